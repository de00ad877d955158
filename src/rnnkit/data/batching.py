"""Padding, truncation and length bucketing.

Sequences are lists (or 1-D arrays) of ids. A batch is post-padded with
PAD_ID to the length of its longest member, so every real step comes first and
a sequence's state can be read at its own last step. Bucketing groups
sequences of similar length into a batch, so little compute goes to padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from rnnkit.data.vocab import PAD_ID
from rnnkit.errors import ConfigError

PADDING_SIDES = ("pre", "post")


def truncate(ids: Sequence[int], maxlen: int, side: str = "pre") -> Sequence[int]:
    """Keep at most `maxlen` ids: side "pre" drops from the start (keeps the end), "post" from the end."""
    if side not in PADDING_SIDES:
        raise ConfigError(f"truncating must be 'pre' or 'post'; got {side!r}")
    if len(ids) <= maxlen:
        return ids
    return ids[-maxlen:] if side == "pre" else ids[:maxlen]


def pad_batch(sequences: Sequence[Sequence[int]], padding: str = "post",
              length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack sequences into ids (N, T) padded with PAD_ID, and lengths (N,).

    T is the longest sequence unless `length` is given (Keras-style fixed length).
    Empty sequences are not allowed (a recurrent model needs at least one step).
    """
    if padding not in PADDING_SIDES:
        raise ConfigError(f"padding must be 'pre' or 'post'; got {padding!r}")
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    if lengths.size and lengths.min() == 0:
        raise ConfigError("cannot batch an empty sequence; drop it or give it at least one token")
    width = int(lengths.max(initial=1)) if length is None else length
    if lengths.size and lengths.max() > width:
        raise ConfigError(f"a sequence of {lengths.max()} ids does not fit padded length {width}; truncate first")
    ids = np.full((len(sequences), width), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(sequences):
        n = len(seq)
        if padding == "post":
            ids[row, :n] = seq
        else:
            ids[row, width - n:] = seq
    return ids, lengths


@dataclass(frozen=True)
class Batch:
    """ids (N, T) post-padded, lengths (N,), labels (N,) float32 (or None), index (N,) into the data set."""

    ids: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray | None
    index: np.ndarray


def bucket_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                   bucket_factor: int = 50) -> list[np.ndarray]:
    """Split indices into batches of similar length.

    With an rng: shuffle, then sort by length inside windows of
    ``batch_size * bucket_factor`` sequences, cut into batches and shuffle the
    batch order (random but low-padding). Without: sort everything by length
    (deterministic, least padding; for evaluation).
    """
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    order = rng.permutation(len(lengths))
    window = batch_size * bucket_factor
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def iterate_batches(sequences: Sequence[np.ndarray], labels: np.ndarray | None, batch_size: int,
                    rng: np.random.Generator | None = None, bucket: bool = True) -> Iterator[Batch]:
    """Yield post-padded batches; `bucket=False` keeps the given (or shuffled) order."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    if bucket:
        groups = bucket_batches(lengths, batch_size, rng)
    else:
        order = rng.permutation(len(sequences)) if rng is not None else np.arange(len(sequences))
        groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for index in groups:
        ids, lens = pad_batch([sequences[i] for i in index])
        yield Batch(ids, lens, None if labels is None else labels[index].astype(np.float32), index)


def text_batches(sequences: Sequence[np.ndarray], labels: np.ndarray | None, batch_size: int,
                 rng: np.random.Generator | None, maxlen: int, truncating: str = "pre",
                 padding: str = "post") -> list[Batch]:
    """Batches of encoded texts for a many-to-one model, each cut to `maxlen` ids from the `truncating` side.

    padding "post": length-bucketed batches, post-padded to their longest text, with masks (no compute
    on padding). "pre": Keras-style fixed length: every text pre-padded to `maxlen`, and the model
    reads the padding too. `rng` shuffles (training); None keeps a fixed order (evaluation).
    """
    cut = [truncate(s, maxlen, truncating) for s in sequences]
    if padding == "post":
        return list(iterate_batches(cut, labels, batch_size, rng, bucket=True))
    return list(_fixed_length_batches(cut, labels, maxlen, batch_size, rng))


def _fixed_length_batches(sequences, labels, maxlen, batch_size, rng) -> Iterator[Batch]:
    order = rng.permutation(len(sequences)) if rng is not None else np.arange(len(sequences))
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        ids, _ = pad_batch([sequences[i] for i in index], padding="pre", length=maxlen)
        lengths = np.full(len(index), maxlen, dtype=np.int64)  # the model reads the padding, as Keras does
        yield Batch(ids, lengths, None if labels is None else labels[index].astype(np.float32), index)

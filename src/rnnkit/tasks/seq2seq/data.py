"""Seq2seq data: held-out, validation and training pairs, vocabularies, and batches.

Data: a TSV pair file, or a built-in generated task (dates, reverse). A held-out
test split is put aside first and never used for model selection (pair files: a
share of the distinct source sentences; generated tasks: a fresh sample, minus
any source seen in training); a validation split picks the best epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rnnkit.data.generated import generated_pairs
from rnnkit.data.pairs import BOS_ID, EOS_ID, PAD_ID, EncodedPairs, PairVocab, encode_pairs, split_by_source
from rnnkit.errors import ConfigError
from rnnkit.tasks.seq2seq.settings import Seq2SeqSettings

@dataclass(frozen=True)
class Splits:
    """(source, target) text pairs: train (fits), val (picks the best epoch), test (held out, reported)."""

    train: list[tuple[str, str]]
    val: list[tuple[str, str]]
    test: list[tuple[str, str]]


def pair_file_splits(pairs: Sequence[tuple[str, str]], heldout: float, val_fraction: float, seed: int) -> Splits:
    """Hold out `heldout` of the distinct sources as test, then `val_fraction` of the rest as validation."""
    rng = np.random.default_rng(seed)
    rest, test = split_by_source([s for s, _ in pairs], heldout, rng)
    rest_pairs = [pairs[i] for i in rest]
    train, val = split_by_source([s for s, _ in rest_pairs], val_fraction, rng)
    return Splits([rest_pairs[i] for i in train], [rest_pairs[i] for i in val], [pairs[i] for i in test])


def generated_splits(task: str, train_size: int, val_size: int, test_size: int, seed: int) -> Splits:
    """Fresh samples of a generated task: validation and test hold distinct sources never seen before them
    (a test source occurs neither in training nor in validation)."""
    for name, value in (("train size", train_size), ("validation size", val_size), ("test size", test_size)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer; got {value!r}")
    train = generated_pairs(task, train_size, seed)
    seen = {s for s, _ in train}
    val = _unseen(task, val_size, seed + 1, seen)
    return Splits(train, val, _unseen(task, test_size, seed + 2, seen))


def _unseen(task: str, count: int, seed: int, seen: set[str]) -> list[tuple[str, str]]:
    """`count` pairs with distinct sources not in `seen`; adds their sources to `seen`."""
    fresh = []
    for pair in generated_pairs(task, 3 * count + 10, seed):
        if pair[0] not in seen:
            seen.add(pair[0])
            fresh.append(pair)
            if len(fresh) == count:
                return fresh
    raise ConfigError(f"the {task} task has too few distinct examples left for {count} unseen pairs; "
                      "use a smaller --train-size or --test-size")


def build_vocabs(train_pairs: Sequence[tuple[str, str]], settings: Seq2SeqSettings, vocab_size: int | None = None,
                 min_freq: int = 1) -> tuple[PairVocab, PairVocab]:
    """Source and target vocabularies from the training pairs only."""
    source = PairVocab.build((s for s, _ in train_pairs), settings.source_level, settings.lowercase, vocab_size, min_freq)
    target = PairVocab.build((t for _, t in train_pairs), settings.target_level, settings.lowercase, vocab_size, min_freq)
    return source, target


def encode_split(pairs: Sequence[tuple[str, str]], source: PairVocab, target: PairVocab,
                 settings: Seq2SeqSettings) -> EncodedPairs:
    return encode_pairs(pairs, source, target, settings.max_source_len, settings.max_target_len)[0]


@dataclass(frozen=True)
class PairBatch:
    """src (N, S) (all of one length), src_lengths (N,), tgt_in (N, T) = <s> y, tgt_out (N, T) = y </s>, index (N,)."""

    src: np.ndarray
    src_lengths: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    index: np.ndarray


def make_batches(data: EncodedPairs, batch_size: int, rng: np.random.Generator | None) -> list[PairBatch]:
    """Batches whose sources all have one length (no source padding: the fused RNN kernel runs exactly).

    `rng` shuffles pairs and batch order (training); None keeps a fixed order.
    """
    lengths = np.fromiter((len(s) for s in data.sources), dtype=np.int64, count=len(data))
    order = rng.permutation(len(data)) if rng is not None else np.arange(len(data))
    batches = []
    for length in np.unique(lengths):
        group = order[lengths[order] == length]
        batches.extend(_batch(data, group[i:i + batch_size]) for i in range(0, len(group), batch_size))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _batch(data: EncodedPairs, index: np.ndarray) -> PairBatch:
    src = np.stack([data.sources[i] for i in index])
    width = max(len(data.targets[i]) for i in index) + 1
    tgt_in = np.full((len(index), width), PAD_ID, dtype=np.int64)
    tgt_out = np.full((len(index), width), PAD_ID, dtype=np.int64)
    for row, i in enumerate(index):
        y = data.targets[i]
        tgt_in[row, 0], tgt_in[row, 1:len(y) + 1] = BOS_ID, y
        tgt_out[row, :len(y)], tgt_out[row, len(y)] = y, EOS_ID
    return PairBatch(src, np.full(len(index), src.shape[1], dtype=np.int64), tgt_in, tgt_out, index)

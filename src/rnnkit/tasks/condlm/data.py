"""Conditional-LM data: labelled texts -> a word vocabulary, label ids, and batches of whole texts.

Key: D texts, K labels, N batch, T time steps (at most `max_len`).

Validation holds out a seeded random share of the texts (`validation_fraction`,
`seed`; `wordlm.data.split_documents`). The vocabulary is a word LM's
(`wordlm.data.vocabulary`: the most frequent training words after <pad> (0),
<unk> (1) and <eos> (2)). Each text is one sequence, read from its label's
initial state: inputs <eos> w_1 .. w_{T-1}, targets w_1 .. w_T, then <eos> as
the last target when the whole text fits in `max_len` words (a longer one is
cut: its first `max_len` words are learned, and no end). Texts of similar
length share a batch (`data.batching.bucket_batches`), post-padded with <pad>;
a mask keeps the padding out of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.data.batching import bucket_batches
from rnnkit.data.documents import documents_of
from rnnkit.data.labelled import LabelledTexts
from rnnkit.data.vocab import PAD_ID, Vocab
from rnnkit.errors import DataError
from rnnkit.tasks.wordlm.data import EOS_ID, split_documents, vocabulary


@dataclass
class Corpus:
    """Labelled texts ready to train on.

    Attributes:
        vocab: the word vocabulary (with <eos> at EOS_ID).
        labels: the label names; a text's label id indexes them.
        train_docs, val_docs: the texts as word ids (int32), none empty.
        train_labels, val_labels: their label ids (int64 (D,)).
        skipped: texts left out because they have no words.
    """

    vocab: Vocab
    labels: tuple[str, ...]
    train_docs: list[np.ndarray]
    train_labels: np.ndarray
    val_docs: list[np.ndarray]
    val_labels: np.ndarray
    skipped: int = 0

    def counts(self, which: str = "train") -> dict[str, int]:
        """Texts per label on one side ("train" or "val")."""
        ids = self.train_labels if which == "train" else self.val_labels
        return {name: int(np.sum(ids == k)) for k, name in enumerate(self.labels)}


@dataclass(frozen=True)
class TextBatch:
    """One batch of whole texts.

    Attributes:
        labels: (N,) label ids; the model starts from each one's state.
        inputs: (N, T) int64: <eos> w_1 .. w_{T-1}, post-padded with <pad>.
        targets: (N, T) int64: w_1 .. w_T (and <eos> after the last word when it fits), post-padded.
        mask: (N, T) bool: the real steps.
    """

    labels: np.ndarray
    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray


def label_ids(data: LabelledTexts, labels: tuple[str, ...]) -> np.ndarray:
    """Each text's label as an index into `labels`; DataError for multi-label data or a label not in `labels`."""
    if data.multi_label:
        raise DataError(f"{data.source}: a conditional language model takes one label per text, not tags; "
                        "read it without a multi-label separator")
    index = {name: k for k, name in enumerate(labels)}
    unknown = sorted({label for label in data.labels if label not in index})
    if unknown:
        raise DataError(f"{data.source}: label(s) {', '.join(map(repr, unknown[:5]))} are not among "
                        f"{', '.join(labels)}")
    return np.array([index[label] for label in data.labels], dtype=np.int64)


def prepare(data: LabelledTexts, labels: tuple[str, ...], vocab_size: int, validation_fraction: float,
            seed: int) -> Corpus:
    """Split the texts, build the vocabulary from the training ones, and encode both sides."""
    ids = label_ids(data, labels)
    documents, kept = documents_of((data.labels[i], text) for i, text in enumerate(data.texts))
    ids = ids[kept]
    held = split_documents(len(documents.docs), validation_fraction, seed)
    if held is None:
        raise DataError(f"{data.source}: {len(documents.docs)} text(s) with words are too few to hold "
                        f"{validation_fraction:g} of them out for validation; give more texts or change --val-fraction")
    is_val = np.zeros(len(documents.docs), bool)
    is_val[held] = True
    train_parts = [d for d, v in zip(documents.docs, is_val) if not v]
    vocab, lookup = vocabulary(documents.words, train_parts, vocab_size)
    return Corpus(vocab, tuple(labels), [lookup[d] for d in train_parts], ids[~is_val],
                  [lookup[d] for d, v in zip(documents.docs, is_val) if v], ids[is_val], len(data) - len(kept))


def text_batches(docs: list[np.ndarray], labels: np.ndarray, max_len: int, batch_size: int,
                 rng: np.random.Generator | None) -> list[TextBatch]:
    """The texts as batches of similar length; `rng` shuffles (training), None sorts by length (validation)."""
    steps = np.fromiter((min(len(d) + 1, max_len) for d in docs), dtype=np.int64, count=len(docs))
    return [make_batch([docs[i] for i in index], labels[index], max_len) for index in
            bucket_batches(steps, batch_size, rng)]


def make_batch(docs: list[np.ndarray], labels: np.ndarray, max_len: int) -> TextBatch:
    """One TextBatch of `docs` (word ids, each followed by <eos>, cut to `max_len` steps)."""
    T = max(min(len(d) + 1, max_len) for d in docs)
    inputs = np.full((len(docs), T), PAD_ID, dtype=np.int64)
    targets = np.full((len(docs), T), PAD_ID, dtype=np.int64)
    for row, doc in enumerate(docs):
        seq = np.concatenate([[EOS_ID], doc, [EOS_ID]])[:max_len + 1]  # <eos> w_1 .. w_L <eos>, cut
        inputs[row, :len(seq) - 1], targets[row, :len(seq) - 1] = seq[:-1], seq[1:]
    return TextBatch(np.asarray(labels, dtype=np.int64), inputs, targets, targets != PAD_ID)


def one_hot(labels: np.ndarray, count: int, dtype=np.float32) -> np.ndarray:
    """Label ids (N,) -> features (N, K): the model's input vector."""
    return np.eye(count, dtype=dtype)[np.asarray(labels, dtype=np.int64)]


def check_layout(corpus: Corpus) -> None:
    """DataError naming the fix when a label has no training text."""
    missing = [name for name, n in corpus.counts("train").items() if n == 0]
    if missing:
        raise DataError(f"no training text has the label(s) {', '.join(missing)}; give texts of every label "
                        "(or more texts, so the validation share does not take them all)")

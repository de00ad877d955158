"""Word-LM data: documents -> a vocabulary, training documents and a validation stream; each epoch's chunks.

Key: D documents, N batch (parallel streams), T time steps (`seq_len`).

Validation holds out whole documents: a seeded random share of them
(`validation_fraction`, `seed`), never the tail of one stream. The vocabulary
is the `vocab_size` most frequent words of the training documents, after
<pad> (0), <unk> (1) and <eos> (2); other words read as <unk> (and are
predicted as <unk>: perplexity counts them, as is usual for word LMs).
A document is followed by <eos> in the token stream, so the model learns
where a review ends and, after <eos>, how one begins.

Each epoch the training documents are shuffled (the run's generator) and
joined, then cut into N streams and T-step chunks as the character LM's text
is (`lm.epoch_chunks`: truncated BPTT, the state carried between chunks).
With fewer documents than it takes to hold one out (e.g. a single file without
blank lines), the last `validation_fraction` of the token stream validates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from rnnkit.data.documents import Documents
from rnnkit.data.vocab import EOS, Vocab
from rnnkit.errors import DataError
from rnnkit.tasks.lm import epoch_chunks

EOS_ID = 2  # Vocab.build(..., specials=[EOS]) puts it right after <pad> and <unk>


@dataclass
class Corpus:
    """Documents ready to train on.

    Attributes:
        vocab: the word vocabulary (with <eos> at EOS_ID).
        train_docs: the training documents as final ids (int32), each without its <eos>.
        val_ids: the validation documents joined, each followed by <eos> (int64 (M,)).
        held_out: "documents" (a share of the documents) or "tail" (the end of the stream: too few documents).
        val_docs: how many documents validate (0 with held_out "tail").
    """

    vocab: Vocab
    train_docs: list[np.ndarray]
    val_ids: np.ndarray
    held_out: str
    val_docs: int

    @property
    def train_tokens(self) -> int:
        return sum(len(d) + 1 for d in self.train_docs)


def split_documents(count: int, validation_fraction: float, seed: int) -> np.ndarray | None:
    """Sorted indices of the validation documents: round(D * fraction) of them drawn with Generator(seed);
    None when that leaves no document on one side."""
    held = int(round(count * validation_fraction))
    if held < 1 or held >= count:
        return None
    return np.sort(np.random.default_rng(seed).choice(count, size=held, replace=False))


def prepare(documents: Documents, vocab_size: int, validation_fraction: float, seed: int) -> Corpus:
    """Split the documents, build the vocabulary from the training ones, and encode both sides."""
    docs = documents.docs
    held = split_documents(len(docs), validation_fraction, seed)
    if held is None:  # too few documents: the end of the one stream validates
        stream = join(docs, eos=-1)  # provisional ids; -1 marks the ends of documents
        cut = int(round(len(stream) * (1.0 - validation_fraction)))
        train_parts, val_parts, held_out = [stream[:cut]], [stream[cut:]], "tail"
    else:
        is_val = np.zeros(len(docs), bool)
        is_val[held] = True
        train_parts = [d for d, v in zip(docs, is_val) if not v]
        val_parts, held_out = [d for d, v in zip(docs, is_val) if v], "documents"
    vocab, lookup = vocabulary(documents.words, train_parts, vocab_size)
    train_docs = [lookup[d] for d in train_parts]
    if held_out == "tail":
        val_ids = lookup[val_parts[0]].astype(np.int64)
    else:
        val_ids = join([lookup[d] for d in val_parts], EOS_ID).astype(np.int64)
    return Corpus(vocab, train_docs, val_ids, held_out, 0 if held_out == "tail" else len(val_parts))


def vocabulary(words: list[str], train_parts: list[np.ndarray], vocab_size: int) -> tuple[Vocab, np.ndarray]:
    """The `vocab_size` most frequent words of `train_parts` (provisional ids into `words`; -1 marks an end of
    document) after <pad>, <unk>, <eos>, and the lookup provisional id -> vocabulary id (int32 (len(words) + 1,):
    its last entry, read by a -1, is <eos>; a word outside the vocabulary maps to <unk>)."""
    counts = np.bincount(_nonnegative(train_parts), minlength=len(words))  # of each word, in training only
    vocab = Vocab.build(Counter({words[i]: int(counts[i]) for i in np.flatnonzero(counts)}), max_size=vocab_size,
                        specials=[EOS])
    return vocab, np.append(np.asarray(vocab.encode(words), dtype=np.int32), np.int32(EOS_ID))


def _nonnegative(parts: list[np.ndarray]) -> np.ndarray:
    """The word ids of `parts`, without the -1 that marks ends of documents."""
    ids = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    return ids[ids >= 0]


def join(docs: list[np.ndarray], eos: int, order: np.ndarray | None = None) -> np.ndarray:
    """The documents (in `order`, else as given) as one stream, each followed by `eos`: (sum(len + 1),) int32."""
    end = np.array([eos], dtype=np.int32)
    pieces = []
    for i in (range(len(docs)) if order is None else order):
        pieces += [docs[i], end]
    return np.concatenate(pieces) if pieces else np.zeros(0, np.int32)


def check_layout(corpus: Corpus, batch_size: int, seq_len: int) -> None:
    """DataError naming the fix when the training or validation part is too short."""
    needed = batch_size * seq_len + 1
    if corpus.train_tokens < needed:
        raise DataError(f"the training documents have {corpus.train_tokens:,} tokens (with <eos>) but --batch-size "
                        f"{batch_size} x --seq-len {seq_len} needs at least {needed:,}; use more text (or a larger "
                        "--max-tokens), or smaller values")
    if len(corpus.val_ids) < 2:
        raise DataError(f"the validation part has {len(corpus.val_ids)} token(s), too few to score; use more text "
                        "or a larger --val-fraction")


def epoch_stream_chunks(corpus: Corpus, batch_size: int, seq_len: int, rng: np.random.Generator) -> list:
    """One epoch: the training documents shuffled with `rng` and joined, cut into chunks (views, int32)."""
    order = rng.permutation(len(corpus.train_docs))
    return epoch_chunks(join(corpus.train_docs, EOS_ID, order), batch_size, seq_len, rng, copy=False)

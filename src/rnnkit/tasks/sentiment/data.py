"""Sentiment data: batches of encoded reviews, the validation split, and the data sets (IMDB, generated).

Two batching modes (`SentimentSettings.padding`, see `rnnkit.data.batching.text_batches`):
"post" (default) length-bucketed and masked, "pre" Keras-style fixed length.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rnnkit.data.batching import Batch, text_batches
from rnnkit.data.vocab import Vocab, tokenize
from rnnkit.tasks.sentiment.settings import SentimentSettings


def make_batches(sequences: Sequence[np.ndarray], labels: np.ndarray | None, settings: SentimentSettings,
                 batch_size: int, rng: np.random.Generator | None) -> list[Batch]:
    """Batches in the settings' mode; `rng` shuffles (training), None keeps a fixed order."""
    return text_batches(sequences, labels, batch_size, rng, settings.maxlen, settings.truncating, settings.padding)


def stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): `fraction` of each class goes to validation."""
    train, val = [], []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        cut = max(1, int(round(len(members) * fraction)))
        val.append(members[:cut])
        train.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def imdb_train_split(source, vocab_size: int | None, progress: bool = True):
    """IMDB train reviews encoded with a `vocab_size` vocabulary built from them: (sequences, labels, vocab)."""
    from rnnkit.data.imdb import load_corpus

    corpus = load_corpus(source, progress=progress)
    vocab = corpus.vocab(vocab_size)
    sequences, labels = corpus.split("train", len(vocab))
    return sequences, labels, vocab


def imdb_split_for(vocab: Vocab, source, split: str = "test", progress: bool = True):
    """An IMDB split re-encoded under `vocab` (any bundle's vocabulary): (sequences, labels)."""
    from rnnkit.data.imdb import load_corpus

    corpus = load_corpus(source, progress=progress)
    table = np.asarray(vocab.encode(["<pad>", "<unk>", *corpus.words]), dtype=np.int64)  # corpus id -> bundle id
    return [table[ids] for ids in corpus.ids[split]], corpus.labels[split]


def demo_data(count: int = 4000, seed: int = 0, vocab: Vocab | None = None):
    """Generated reviews (see `rnnkit.data.synthetic`), encoded: (sequences, labels, vocab).

    The vocabulary is built from these reviews unless one is given (held-out sets).
    """
    from rnnkit.data.synthetic import generate_reviews
    from rnnkit.data.vocab import count_tokens

    texts, labels = generate_reviews(count, seed=seed)
    tokens = [tokenize(t) for t in texts]
    vocab = vocab or Vocab.build(count_tokens(tokens))
    return [np.asarray(vocab.encode(t), dtype=np.int64) for t in tokens], labels, vocab

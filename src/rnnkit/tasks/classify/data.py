"""Classification data: texts to ids, labels to targets, and batches.

Key: N texts, K classes. Targets are, by `ClassifySettings.kind`:
binary (N,) 0/1 (the second label is 1), multiclass (N,) class ids,
multilabel (N, K) 0/1 per tag.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from rnnkit.data.batching import Batch, text_batches
from rnnkit.data.labelled import Label
from rnnkit.data.vocab import Vocab, count_tokens, tokenize
from rnnkit.errors import DataError
from rnnkit.tasks.classify.settings import ClassifySettings


def word_counts(texts: Sequence[str]) -> Counter:
    """How often each token occurs in `texts`: the vocabulary keeps the most frequent (`Vocab.build`), and
    pretrained vectors' token coverage is counted in them."""
    return count_tokens(tokenize(t) for t in texts)


def encode(texts: Sequence[str], vocab: Vocab) -> list[np.ndarray]:
    """Each text as word ids (T_i,) int64 (empty when it has no words)."""
    return [np.asarray(vocab.encode(tokenize(t)), dtype=np.int64) for t in texts]


def targets(labels: Sequence[Label], settings: ClassifySettings) -> np.ndarray:
    """What the model learns for each label; a label the settings do not know is a DataError naming it."""
    index = {label: i for i, label in enumerate(settings.labels)}
    unknown = sorted({tag for label in labels for tag in (label if isinstance(label, tuple) else (label,))
                      if tag not in index})
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise DataError(f"{len(unknown)} label(s) the model was not trained on: {shown} (it knows "
                        f"{', '.join(map(repr, settings.labels))})")
    if settings.kind == "multilabel":
        out = np.zeros((len(labels), len(settings.labels)), dtype=np.float32)
        for row, tags in enumerate(labels):
            out[row, [index[t] for t in (tags if isinstance(tags, tuple) else (tags,))]] = 1.0
        return out
    ids = np.array([index[label] for label in labels], dtype=np.int64)
    return ids.astype(np.float32) if settings.kind == "binary" else ids


def with_words(sequences: list[np.ndarray]) -> np.ndarray:
    """Indices of the texts that have at least one word (a text without any cannot be read)."""
    return np.array([i for i, s in enumerate(sequences) if len(s)], dtype=np.int64)


def make_batches(sequences: Sequence[np.ndarray], labels: np.ndarray | None, settings: ClassifySettings,
                 batch_size: int, rng: np.random.Generator | None) -> list[Batch]:
    """Batches in the settings' mode; `rng` shuffles (training), None keeps a fixed order."""
    return text_batches(sequences, labels, batch_size, rng, settings.maxlen, settings.truncating, settings.padding)

"""Classification scores: class probabilities through any engine's logits, loss, and the metrics.

Key: N texts, K classes. `probabilities` are (N, K) for every kind: a binary
model's one sigmoid p becomes the two columns (1 - p, p).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from rnnkit.metrics import classification_report, multi_label_report
from rnnkit.tasks.classify.data import make_batches
from rnnkit.tasks.classify.settings import ClassifySettings

EVAL_BATCH = 256
EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] before the log in the loss


def probabilities(logits: Callable[[np.ndarray, np.ndarray], np.ndarray], sequences: Sequence[np.ndarray],
                  settings: ClassifySettings, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """(N, K) float64 class probabilities of encoded texts, given a logits(ids, lengths) -> (N, O) function."""
    out = np.zeros((len(sequences), len(settings.labels)), dtype=np.float64)
    for batch in make_batches(sequences, None, settings, batch_size, rng=None):
        z = np.asarray(logits(batch.ids, batch.lengths), dtype=np.float64)
        out[batch.index] = from_logits(z, settings)
    return out


def from_logits(z: np.ndarray, settings: ClassifySettings) -> np.ndarray:
    """Logits (N, O) -> class probabilities (N, K)."""
    if settings.kind == "multiclass":
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    p = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow
    return np.concatenate([1.0 - p, p], axis=1) if settings.kind == "binary" else p


def predicted(probs: np.ndarray, settings: ClassifySettings) -> np.ndarray:
    """Class ids (N,) (the most probable class), or for multi-label (N, K) booleans (p >= threshold)."""
    if settings.kind == "multilabel":
        return probs >= settings.threshold
    return probs.argmax(axis=1)


def example_losses(probs: np.ndarray, targets: np.ndarray, settings: ClassifySettings) -> np.ndarray:
    """Each example's loss (N,): -log p(true class), or for multi-label the mean binary cross-entropy."""
    p = np.clip(probs, EPSILON, 1 - EPSILON)
    if settings.kind == "multilabel":
        return -np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p), axis=1)
    return -np.log(p[np.arange(len(p)), targets.astype(np.int64)])


def metrics(probs: np.ndarray, targets: np.ndarray, settings: ClassifySettings) -> dict:
    """loss, accuracy (subset accuracy for multi-label), macro-F1, and the full report ("report")."""
    losses = example_losses(probs, targets, settings)
    guess = predicted(probs, settings)
    if settings.kind == "multilabel":
        report = multi_label_report(targets.astype(bool), guess, list(settings.labels))
        accuracy, macro_f1 = report["subset_accuracy"], report["macro_f1"]
    else:
        report = classification_report(targets.astype(np.int64), guess, list(settings.labels))
        accuracy, macro_f1 = report["accuracy"], report["macro_f1"]
    return {"loss": float(losses.mean()), "accuracy": float(accuracy), "macro_f1": float(macro_f1),
            "count": int(len(targets)), "report": report}

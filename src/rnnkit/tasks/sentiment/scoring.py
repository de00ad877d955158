"""Sentiment scores: P(positive) of encoded reviews through any logits function, and the binary metrics."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from rnnkit.tasks.sentiment.data import make_batches
from rnnkit.tasks.sentiment.settings import SentimentSettings

EVAL_BATCH = 256


def probabilities(logits: Callable[[np.ndarray, np.ndarray], np.ndarray], sequences: Sequence[np.ndarray],
                  settings: SentimentSettings, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """P(positive) (N,) float64 of encoded, truncated reviews, given a logits(ids, lengths) -> (N, 1) function."""
    out = np.zeros(len(sequences), dtype=np.float64)
    for batch in make_batches(sequences, None, settings, batch_size, rng=None):
        z = np.asarray(logits(batch.ids, batch.lengths), dtype=np.float64).reshape(-1)
        out[batch.index] = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow
    return out


def binary_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """loss (mean binary cross-entropy), accuracy, and the confusion matrix [[TN, FP], [FN, TP]]."""
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    y = labels.astype(np.float64)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    predicted = (probabilities > 0.5).astype(np.int64)
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"loss": loss, "accuracy": (tp + tn) / max(1, len(labels)), "precision": precision,
            "recall": recall, "f1": f1, "confusion_matrix": [[tn, fp], [fn, tp]], "count": int(len(labels))}

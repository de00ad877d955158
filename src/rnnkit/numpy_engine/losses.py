"""Losses on logits, each returning (mean loss, gradient of the loss w.r.t. the logits).

Key: N examples (any leading shape), O classes. Computed in the stable forms
torch.nn.functional uses, so large logits neither overflow nor lose precision.
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, in the logits' dtype: (z - max) - log(sum(exp(z - max)))."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def binary_cross_entropy_with_logits(logits: np.ndarray, targets: np.ndarray,
                                     weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """mean(-y log sigmoid(z) - (1 - y) log(1 - sigmoid(z))); logits and targets of one shape (e.g. (N, 1)).

    Stable form: max(z, 0) - z y + log(1 + exp(-|z|)); gradient (sigmoid(z) - y) / count.
    `weights` (N,) weighs each example (row): the loss is then sum(w l) / sum(w).
    """
    z = logits
    y = np.asarray(targets, dtype=z.dtype).reshape(z.shape)
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    probability = 0.5 * (1.0 + np.tanh(0.5 * z))
    if weights is None:
        return float(loss.mean()), ((probability - y) / z.size).astype(z.dtype)
    w = _row_weights(weights, z)
    total = float(w.sum()) * (z.size // len(z))
    return float((loss * w).sum() / total), ((probability - y) * w / total).astype(z.dtype)


def _row_weights(weights: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Per-example weights (N,) shaped to broadcast over `like` (N, ...)."""
    return np.asarray(weights, dtype=np.float64).reshape((len(like),) + (1,) * (like.ndim - 1))


def cross_entropy_with_logits(logits: np.ndarray, targets: np.ndarray, ignore_index: int | None = None,
                              class_weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """mean over counted targets of -log softmax(logits)[target]; logits (..., O), targets (...) int.

    Targets equal to `ignore_index` (e.g. padding) count neither in the loss nor in the mean,
    as in torch.nn.functional.cross_entropy. `class_weights` (O,) weighs each target by its
    class: the loss is then sum(w[y] l) / sum(w[y]) (torch's `weight=`).
    """
    O = logits.shape[-1]
    z = logits.reshape(-1, O)
    y = np.asarray(targets).reshape(-1)
    counted = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    safe_y = np.where(counted, y, 0)
    weight = counted.astype(np.float64)
    if class_weights is not None:
        weight *= np.asarray(class_weights, dtype=np.float64)[safe_y]
    total = float(weight.sum()) or 1.0
    log_p = log_softmax(z)  # (M, O)
    rows = np.arange(len(y))
    loss = -(log_p[rows, safe_y] * weight).sum() / total
    grad = np.exp(log_p)
    grad[rows, safe_y] -= 1.0
    grad *= (weight / total)[:, None]
    return float(loss), grad.reshape(logits.shape).astype(logits.dtype)

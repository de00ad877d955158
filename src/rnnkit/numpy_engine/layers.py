"""The non-recurrent layers and PyTorch's initialisation.

Key: N batch, T time, E embedding size, V vocabulary, F features, O outputs.
Each layer keeps what backward needs from its last forward; `backward` returns
the gradient of the input and fills `grads` (parameters are held by reference,
so optimizers update them in place).

Initialisation (as torch.nn does it):
    recurrent weights and biases  U(-1/sqrt(H), 1/sqrt(H))
    Linear weight and bias        U(-1/sqrt(F), 1/sqrt(F))   (F = in features)
    Embedding                     N(0, 1), the padding row zero
"""

from __future__ import annotations

import numpy as np


def uniform_init(rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype=np.float32) -> np.ndarray:
    """U(-bound, bound) of `shape`."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def embedding_init(rng: np.random.Generator, shape: tuple[int, int], padding_idx: int | None,
                   dtype=np.float32) -> np.ndarray:
    """N(0, 1) rows (V, E); the padding row is zero."""
    weight = rng.standard_normal(shape).astype(dtype)
    if padding_idx is not None:
        weight[padding_idx] = 0.0
    return weight


class Embedding:
    """ids (N, T) -> vectors (T, N, E), time-major for the recurrent layers.

    The padding row gets no gradient (it stays zero), as in torch.nn.Embedding.
    """

    def __init__(self, weight: np.ndarray, padding_idx: int | None = None) -> None:
        self.weight, self.padding_idx = weight, padding_idx
        self.grads = {"weight": np.zeros_like(weight)}
        self._ids = None

    def forward(self, ids: np.ndarray) -> np.ndarray:
        self._ids = np.ascontiguousarray(ids.T)  # (T, N)
        return self.weight[self._ids]

    def backward(self, dx: np.ndarray) -> None:
        """dx (T, N, E): scatter-add into the rows that were read."""
        dw = self.grads["weight"]
        dw.fill(0.0)
        np.add.at(dw, self._ids.ravel(), dx.reshape(-1, dw.shape[1]))
        if self.padding_idx is not None:
            dw[self.padding_idx] = 0.0


def token_mask(ids: np.ndarray, lengths: np.ndarray, padding_idx: int | None) -> np.ndarray:
    """real (N, T) bool: True at a text's tokens, i.e. t < length and not the padding id.

    Keras-style pre-padded batches say every length is T and put the padding first; leaving out the
    padding id finds the tokens in either layout.
    """
    ids = np.asarray(ids)
    real = np.arange(ids.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return real if padding_idx is None else real & (ids != padding_idx)


class Dense:
    """y = x W^T + b over the last axis: x (..., F) -> y (..., O); W (O, F), b (O,)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight, self.bias = weight, bias
        self.grads = {"weight": np.zeros_like(weight), "bias": np.zeros_like(bias)}
        self._x = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return x @ self.weight.T + self.bias

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x2 = self._x.reshape(-1, self._x.shape[-1])
        dy2 = dy.reshape(-1, dy.shape[-1])
        np.matmul(dy2.T, x2, out=self.grads["weight"])
        np.sum(dy2, axis=0, out=self.grads["bias"])
        return dy @ self.weight


def dropout_mask(p: float, like: np.ndarray, rng: np.random.Generator | None) -> np.ndarray | float:
    """Inverted-dropout mask shaped like `like`: 0 with probability p, else 1 / (1 - p); 1.0 when p is 0."""
    if not p:
        return 1.0
    if rng is None:
        raise ValueError("dropout in training needs a numpy Generator (pass rng=)")
    return (rng.random(like.shape) >= p).astype(like.dtype) / (1.0 - p)


class Dropout:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p) (training only)."""

    def __init__(self, p: float) -> None:
        self.p = p
        self._mask = None

    def forward(self, x: np.ndarray, train: bool, rng: np.random.Generator | None) -> np.ndarray:
        if not train or self.p == 0.0:
            self._mask = None
            return x
        self._mask = dropout_mask(self.p, x, rng)
        return x * self._mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self._mask is None else dy * self._mask


class Pooling:
    """Reduce outputs (T, N, K*H) over each sequence's real steps to features (N, F).

    "last": the forward direction at t = length-1 and (bidirectional) the
    reverse direction at t = 0, concatenated; "max" / "mean" over t < length;
    "mean_max": [mean, max]. At ties, max sends the gradient to the first maximum.
    """

    def __init__(self, mode: str, hidden_size: int, bidirectional: bool) -> None:
        self.mode, self.hidden_size, self.bidirectional = mode, hidden_size, bidirectional
        self._cache = None

    def forward(self, outputs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        T, N, KH = outputs.shape
        lengths = np.asarray(lengths)
        rows = np.arange(N)
        if self.mode == "last":
            self._cache = (outputs.shape, lengths)
            final = outputs[lengths - 1, rows]  # (N, K*H)
            if self.bidirectional:
                final[:, self.hidden_size:] = outputs[0, :, self.hidden_size:]  # reverse direction ends at t=0
            return final
        mask = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]  # (T, N, 1)
        parts = []
        argmax = None
        if self.mode in ("mean", "mean_max"):
            mean = np.where(mask, outputs, 0.0).sum(axis=0) / lengths[:, None].astype(outputs.dtype)
            parts.append(mean.astype(outputs.dtype))
        if self.mode in ("max", "mean_max"):
            masked = np.where(mask, outputs, -np.inf)
            argmax = masked.argmax(axis=0)  # (N, K*H)
            parts.append(np.take_along_axis(outputs, argmax[None], axis=0)[0])
        self._cache = (outputs.shape, lengths, mask, argmax)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def backward(self, dfeatures: np.ndarray) -> np.ndarray:
        """dfeatures (N, F) -> doutputs (T, N, K*H)."""
        shape, lengths = self._cache[:2]
        T, N, KH = shape
        rows = np.arange(N)
        dout = np.zeros(shape, dfeatures.dtype)
        if self.mode == "last":
            H = self.hidden_size if self.bidirectional else KH
            dout[lengths - 1, rows, :H] = dfeatures[:, :H]
            if self.bidirectional:
                dout[0, :, H:] += dfeatures[:, H:]
            return dout
        mask, argmax = self._cache[2:]
        dmean, dmax = (np.split(dfeatures, 2, axis=1) if self.mode == "mean_max" else
                       (dfeatures, None) if self.mode == "mean" else (None, dfeatures))
        if dmean is not None:
            dout += np.where(mask, (dmean / lengths[:, None].astype(dfeatures.dtype))[None], 0.0)
        if dmax is not None:
            np.put_along_axis(dout, argmax[None], np.take_along_axis(dout, argmax[None], axis=0) + dmax[None],
                              axis=0)
        return dout

"""Output layers of a language model, forward and backward: dense, tied to the embedding, adaptive softmax.

Key: M rows (N * T positions), H hidden size, E embedding size, V vocabulary,
C = c_1 + K head entries of an adaptive softmax with K clusters.

Each layer has the interface of `layers.Dense` (forward x (..., H) -> scores
(..., V); backward; `grads` by the names under "head.") and a training loss on
(x, targets) that never needs more of the distribution than the targets':

    loss(x (M, H), y (M,)) -> (mean -log p(y), log p(y) (M,))   keeps a cache
    loss_backward() -> dx (M, H)                                  fills `grads`

    DenseOutput     scores = x W^T + b                           (head.weight (V, H), head.bias)
    TiedOutput      scores = (x P^T) E^T + b, E the embedding    (head.bias; head.projection.weight (E, H) if H != E)
    AdaptiveOutput  log-probabilities of an adaptive softmax     (torch's AdaptiveLogSoftmaxWithLoss)

Adaptive softmax (Grave et al., 2017): ids are ranked by frequency; the head
scores the c_1 most frequent ids and one entry per cluster k (ids c_k ..
c_{k+1} - 1). log p(y) = log_softmax(head)[y] for a head id, else
log_softmax(head)[c_1 + k] + log_softmax(tail_k)[y - c_k], where tail_k(x) =
(x P_k^T) W_k^T has a narrow projection P_k (H // 4^k, H). A step then costs a
(C x H) product for every row and a cluster's products only for the rows whose
target is in it, instead of a (V x H) product.
"""

from __future__ import annotations

import numpy as np

from rnnkit.numpy_engine.layers import Dense
from rnnkit.numpy_engine.losses import log_softmax
from rnnkit.params import adaptive_sizes


class FullSoftmaxLoss:
    """The loss of a layer whose `forward` gives the full scores (dense or tied): cross-entropy over V."""

    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """x (M, H), y (M,) -> (mean -log p(y), log p(y) (M,))."""
        log_p = log_softmax(self.forward(x))  # (M, V)
        rows = np.arange(len(y))
        picked = log_p[rows, y]
        self._loss_cache = (log_p, y)
        return float(-picked.mean()), picked

    def loss_backward(self) -> np.ndarray:
        """dx (M, H) of the mean loss: d scores = (softmax - onehot(y)) / M."""
        log_p, y = self._loss_cache
        dscores = np.exp(log_p)
        dscores[np.arange(len(y)), y] -= 1.0
        dscores /= len(y)
        return self.backward(dscores)


class DenseOutput(FullSoftmaxLoss, Dense):
    """`layers.Dense` with the language model's loss."""


class TiedOutput(FullSoftmaxLoss):
    """scores = p E^T + b with p = x P^T (or p = x when H == E): the embedding E (V, E) is the output matrix.

    The embedding's gradient from this layer is left in `embedding_grad`; the model adds it to the
    gradient of the embedding lookup (one tensor, two uses).
    """

    def __init__(self, embedding: np.ndarray, bias: np.ndarray, projection: np.ndarray | None) -> None:
        self.embedding, self.bias, self.projection = embedding, bias, projection
        self.grads = {"bias": np.zeros_like(bias)}
        if projection is not None:
            self.grads["projection.weight"] = np.zeros_like(projection)
        self.embedding_grad = np.zeros_like(embedding)
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (..., H) -> scores (..., V)."""
        p = x if self.projection is None else x @ self.projection.T  # (..., E)
        self._cache = (x, p)
        return p @ self.embedding.T + self.bias

    def backward(self, dscores: np.ndarray) -> np.ndarray:
        """dscores (..., V) -> dx (..., H); fills grads and embedding_grad."""
        x, p = self._cache
        d2 = dscores.reshape(-1, dscores.shape[-1])
        np.matmul(d2.T, p.reshape(-1, p.shape[-1]), out=self.embedding_grad)  # scores = p E^T
        np.sum(d2, axis=0, out=self.grads["bias"])
        dp = dscores @ self.embedding
        if self.projection is None:
            return dp
        np.matmul(dp.reshape(-1, dp.shape[-1]).T, x.reshape(-1, x.shape[-1]), out=self.grads["projection.weight"])
        return dp @ self.projection  # p = x P^T


class AdaptiveOutput:
    """Adaptive softmax over V ids: `forward` gives full log-probabilities (M, V) (scores whose softmax is the
    distribution, as a dense layer's logits are), `loss` only the targets'.

    Parameters by reference: weight (C, H) and bias (C,) of the head, tails[k] = (P_k (h_k, H), W_k (n_k, h_k)).
    """

    def __init__(self, params: dict[str, np.ndarray], vocab_size: int, cutoffs) -> None:
        self.weight, self.bias = params["head.weight"], params["head.bias"]
        hidden = self.weight.shape[1]
        self.clusters = adaptive_sizes(vocab_size, hidden, cutoffs)  # (start, end, width) per cluster
        self.shortlist = cutoffs[0]
        self.tails = [(params[f"head.tail.{k}.0.weight"], params[f"head.tail.{k}.1.weight"])
                      for k in range(len(self.clusters))]
        self.grads = {"weight": np.zeros_like(self.weight), "bias": np.zeros_like(self.bias)}
        for k, (projection, weight) in enumerate(self.tails):
            self.grads[f"tail.{k}.0.weight"] = np.zeros_like(projection)
            self.grads[f"tail.{k}.1.weight"] = np.zeros_like(weight)
        self.vocab_size = vocab_size
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (..., H) -> log p of every id (..., V)."""
        shape = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        head = log_softmax(x2 @ self.weight.T + self.bias)  # (M, C)
        out = np.empty((len(x2), self.vocab_size), dtype=head.dtype)
        out[:, :self.shortlist] = head[:, :self.shortlist]
        for k, ((start, end, _), (projection, weight)) in enumerate(zip(self.clusters, self.tails)):
            out[:, start:end] = log_softmax((x2 @ projection.T) @ weight.T) + head[:, self.shortlist + k, None]
        return out.reshape(*shape, self.vocab_size)

    def backward(self, dscores: np.ndarray) -> np.ndarray:
        raise NotImplementedError("an adaptive softmax trains through loss() / loss_backward(), not full scores")

    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """x (M, H), y (M,) ids -> (mean -log p(y), log p(y) (M,)); the cache is for `loss_backward`."""
        y = np.asarray(y)
        z = x @ self.weight.T + self.bias  # (M, C)
        head = log_softmax(z)
        target = y.copy()  # the head entry each row is scored on: its id, or its cluster's entry
        tails = []
        for k, (start, end, _) in enumerate(self.clusters):
            rows = np.flatnonzero((y >= start) & (y < end))
            target[rows] = self.shortlist + k
            if len(rows):
                projection, weight = self.tails[k]
                u = x[rows] @ projection.T  # (m, h_k)
                tail = log_softmax(u @ weight.T)  # (m, n_k)
                tails.append((k, rows, u, tail, y[rows] - start))
        picked = head[np.arange(len(y)), target]
        for _, rows, _, tail, local in tails:
            picked[rows] += tail[np.arange(len(rows)), local]
        self._cache = (x, head, target, tails)
        return float(-picked.mean()), picked

    def loss_backward(self) -> np.ndarray:
        """dx (M, H) of the mean loss; fills grads (a cluster no target fell in gets zeros)."""
        x, head, target, tails = self._cache
        M = len(x)
        dz = np.exp(head)  # d(-log softmax(z)[t]) / dz = softmax(z) - onehot(t)
        dz[np.arange(M), target] -= 1.0
        dz /= M
        np.matmul(dz.T, x, out=self.grads["weight"])
        np.sum(dz, axis=0, out=self.grads["bias"])
        dx = dz @ self.weight
        for k in range(len(self.tails)):
            self.grads[f"tail.{k}.0.weight"].fill(0.0)
            self.grads[f"tail.{k}.1.weight"].fill(0.0)
        for k, rows, u, tail, local in tails:
            projection, weight = self.tails[k]
            dt = np.exp(tail)
            dt[np.arange(len(rows)), local] -= 1.0
            dt /= M
            np.matmul(dt.T, u, out=self.grads[f"tail.{k}.1.weight"])  # tail = u W^T
            du = dt @ weight
            np.matmul(du.T, x[rows], out=self.grads[f"tail.{k}.0.weight"])  # u = x P^T
            dx[rows] += du @ projection
        return dx


def output_layer(config, params: dict[str, np.ndarray]):
    """The output layer `config.output_layer` names, on `params` (by reference)."""
    if config.output_layer == "tied":
        return TiedOutput(params["embedding.weight"], params["head.bias"], params.get("head.projection.weight"))
    if config.output_layer == "adaptive":
        return AdaptiveOutput(params, config.output_size, config.cutoffs)
    return DenseOutput(params["head.weight"], params["head.bias"])

"""Attention over an encoded source, forward and backward, as pure functions.

Key: N batch, S source steps, T decoder steps, Hd decoder hidden size (= the
encoder's output size), A attention size (= Hd). The encoded source is a
`Memory`: outputs h_j (N, S, Hd), mask (N, S) True at real steps, and keys
(N, S, A) computed once per source. Padding is masked out of the softmax, so
its weights are exactly 0. Semantics and tensor names as in
`rnnkit.torch_engine.seq2seq`:

    bahdanau (additive)       before each decoder step, the previous top state s scores every h_j:
                              e_j = v . tanh(W_q s + k_j),   k_j = W_k h_j + b_k
                              context c = sum_j softmax(e)_j h_j
    luong ("general")         after each step, e_j = s_t . k_j with k_j = W_a h_j;
                              the attentional state is tanh(W_c [c_t; s_t])

Each forward returns its result and a cache; its backward takes the cache and
returns the gradients of the query, of the memory (outputs and keys) and of
its own weights. The keys' own backward (into W_k, b_k or W_a and into the
outputs) belongs to whoever computed them (`rnnkit.numpy_engine.seq2seq`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Memory:
    """The encoded source: outputs (N, S, Hd), mask (N, S) True at real steps, keys (N, S, A) or None."""

    outputs: np.ndarray
    mask: np.ndarray
    keys: np.ndarray | None

    def select(self, rows: np.ndarray) -> "Memory":
        """Rows (beams) of the memory, e.g. to follow a beam search."""
        return Memory(self.outputs[rows], self.mask[rows], None if self.keys is None else self.keys[rows])


def masked_softmax(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """softmax over the last axis of scores (..., S) where mask (broadcastable) is True; 0 elsewhere."""
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights


def softmax_backward(dweights: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """d scores from d weights through a softmax over the last axis (masked entries, weight 0, get 0)."""
    return weights * (dweights - np.sum(dweights * weights, axis=-1, keepdims=True))


# --------------------------------------------------------------------------- Bahdanau

@dataclass(frozen=True)
class AdditiveCache:
    query: np.ndarray     # s (N, Hd)
    energy: np.ndarray    # tanh(W_q s + k_j) (N, S, A)
    weights: np.ndarray   # (N, S)
    memory: Memory


def additive_attention(query: np.ndarray, memory: Memory, w_query: np.ndarray, w_energy: np.ndarray):
    """query s (N, Hd), W_q (A, Hd), v = w_energy (1, A) -> context (N, Hd), weights (N, S), cache."""
    energy = np.tanh(memory.keys + (query @ w_query.T)[:, None, :])  # (N, S, A)
    scores = energy @ w_energy[0]                                     # (N, S)
    weights = masked_softmax(scores, memory.mask)
    context = np.einsum("ns,nsh->nh", weights, memory.outputs)
    return context, weights, AdditiveCache(query, energy, weights, memory)


def additive_attention_backward(dcontext: np.ndarray, cache: AdditiveCache, w_query: np.ndarray,
                                w_energy: np.ndarray):
    """dcontext (N, Hd) -> dquery (N, Hd), doutputs (N, S, Hd), dkeys (N, S, A), dW_q (A, Hd), dv (1, A)."""
    m = cache.memory
    doutputs = cache.weights[:, :, None] * dcontext[:, None, :]      # context = sum_j w_j h_j
    dweights = np.einsum("nh,nsh->ns", dcontext, m.outputs)
    dscores = softmax_backward(dweights, cache.weights)
    dw_energy = np.einsum("ns,nsa->a", dscores, cache.energy)[None, :]
    dkeys = dscores[:, :, None] * w_energy[0] * (1.0 - cache.energy ** 2)  # d (W_q s + k_j)
    dprojected = dkeys.sum(axis=1)                                    # W_q s is shared by every j
    return dprojected @ w_query, doutputs, dkeys, dprojected.T @ cache.query, dw_energy


# --------------------------------------------------------------------------- Luong

@dataclass(frozen=True)
class MultiplicativeCache:
    queries: np.ndarray   # s (N, T, Hd)
    weights: np.ndarray   # (N, T, S)
    combined: np.ndarray  # [c; s] (N, T, 2Hd)
    attentional: np.ndarray  # tanh(W_c [c; s]) (N, T, Hd)
    memory: Memory


def multiplicative_attention(queries: np.ndarray, memory: Memory, w_combine: np.ndarray):
    """queries s (N, T, Hd), W_c (Hd, 2Hd) -> attentional states (N, T, Hd), weights (N, T, S), cache."""
    scores = queries @ memory.keys.transpose(0, 2, 1)                # (N, T, S)
    weights = masked_softmax(scores, memory.mask[:, None, :])
    context = weights @ memory.outputs                               # (N, T, Hd)
    combined = np.concatenate([context, queries], axis=-1)
    attentional = np.tanh(combined @ w_combine.T)
    return attentional, weights, MultiplicativeCache(queries, weights, combined, attentional, memory)


def multiplicative_attention_backward(dattentional: np.ndarray, cache: MultiplicativeCache,
                                      w_combine: np.ndarray):
    """dattentional (N, T, Hd) -> dqueries (N, T, Hd), doutputs (N, S, Hd), dkeys (N, S, A), dW_c (Hd, 2Hd)."""
    m, Hd = cache.memory, cache.queries.shape[-1]
    dpre = dattentional * (1.0 - cache.attentional ** 2)
    dw_combine = np.einsum("nto,nti->oi", dpre, cache.combined)
    dcombined = dpre @ w_combine
    dcontext, dqueries = dcombined[..., :Hd], dcombined[..., Hd:]
    doutputs = cache.weights.transpose(0, 2, 1) @ dcontext           # context = weights @ outputs
    dscores = softmax_backward(dcontext @ m.outputs.transpose(0, 2, 1), cache.weights)
    dqueries = dqueries + dscores @ m.keys                           # scores = s . k_j
    dkeys = dscores.transpose(0, 2, 1) @ cache.queries
    return dqueries, doutputs, dkeys, dw_combine

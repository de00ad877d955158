"""One time step of each recurrent cell, forward and backward, as pure functions.

Key: N batch, H hidden size, G gate blocks (1 rnn, 4 lstm, 3 gru), D input size.
``xw = x W_ih^T + b_ih`` (N, G*H) is the input's share of the gate
pre-activations; the layer computes it for all time steps in one matmul before
the loop, so a step only multiplies the previous hidden state by ``W_hh``
(G*H, H). Weights and gate order are PyTorch's, so tensors move between
engines unchanged::

    rnn   h = tanh(xw + h_prev W_hh^T + b_hh)
          (the classic Wxh = W_ih, Whh = W_hh, b_h = b_ih + b_hh; Why, b_y is the head)
    lstm  i|f|g|o = split(xw + h_prev W_hh^T + b_hh)
          i, f, o = sigmoid(.), g = tanh(.)
          c = f * c_prev + i * g,   h = o * tanh(c)
    gru   hw = h_prev W_hh^T + b_hh,   r|z|n blocks of xw and hw
          r = sigmoid(xw_r + hw_r),  z = sigmoid(xw_z + hw_z)
          n = tanh(xw_n + r * hw_n),  h = (1 - z) * n + z * h_prev

Every cell has the same interface, so one layer (`rnnkit.numpy_engine.recurrent`)
unrolls any of them:

    state, cache = step(xw, state_prev, w_hh, b_hh, cache=None)
    dxw, dhw, dstate_prev = step_backward(dstate, cache, w_hh, dxw=None, dhw=None)

``state`` is a tuple: ``(h,)`` for rnn and gru, ``(h, c)`` for lstm. ``dhw`` is
the gradient of ``hw = h_prev W_hh^T + b_hh``, so the caller gets the weight
gradients of a whole sequence in two matmuls: ``dW_ih = sum_t dxw_t^T x_t``,
``dW_hh = sum_t dhw_t^T h_prev_t`` (for rnn and lstm ``dhw`` is ``dxw``).
``b_hh=None`` means it is already inside ``xw`` (valid for rnn and lstm, whose
biases add linearly; not for gru's ``b_hn``, which r multiplies).

A cache is a small frozen dataclass of the arrays backward needs. Pass one in
(its arrays views into a layer's preallocated (T, ...) buffers) and the step
writes into it instead of allocating: that, fused gate math and in-place
operations make the layer fast; ``step(xw, state)`` alone reads as the math.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)) computed as 0.5 * tanh(x / 2) + 0.5: no overflow, in place if out is x."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _preactivation(xw, h_prev, w_hh, b_hh, out):
    """out = xw + h_prev W_hh^T (+ b_hh): the gate pre-activations (N, G*H)."""
    out = np.matmul(h_prev, w_hh.T, out=out)
    out += xw
    if b_hh is not None:
        out += b_hh
    return out


# --------------------------------------------------------------------------- vanilla RNN

@dataclass(frozen=True)
class RNNCache:
    """h_prev (N, H) and the new h (N, H) = tanh(pre-activation)."""

    h_prev: np.ndarray
    h: np.ndarray


def rnn_step(xw, state, w_hh, b_hh=None, cache: RNNCache | None = None):
    """h = tanh(xw + h_prev W_hh^T + b_hh). xw (N, H), state (h_prev,), w_hh (H, H) -> ((h,), cache)."""
    (h_prev,) = state
    cache = cache or RNNCache(h_prev, np.empty_like(xw))
    h = _preactivation(xw, h_prev, w_hh, b_hh, out=cache.h)
    np.tanh(h, out=h)
    return (h,), cache


def rnn_step_backward(dstate, cache: RNNCache, w_hh, dxw=None, dhw=None):
    """dstate (dh,) (N, H) -> dxw (N, H), dhw (= dxw), (dh_prev,)."""
    (dh,) = dstate
    h = cache.h
    da = np.multiply(h, h, out=dxw)          # da = dh * (1 - h^2)
    np.subtract(1.0, da, out=da)
    da *= dh
    return da, da, (da @ w_hh,)


# --------------------------------------------------------------------------- LSTM

@dataclass(frozen=True)
class LSTMCache:
    """h_prev, c_prev (N, H); gates (N, 4H) activations i|f|g|o; tanh_c, and the new h, c (N, H)."""

    h_prev: np.ndarray
    c_prev: np.ndarray
    gates: np.ndarray
    tanh_c: np.ndarray
    h: np.ndarray
    c: np.ndarray


def lstm_step(xw, state, w_hh, b_hh=None, cache: LSTMCache | None = None):
    """One LSTM step. xw (N, 4H), state (h_prev, c_prev), w_hh (4H, H) -> ((h, c), cache)."""
    h_prev, c_prev = state
    H = h_prev.shape[1]
    if cache is None:
        cache = LSTMCache(h_prev, c_prev, np.empty_like(xw), *(np.empty_like(h_prev) for _ in range(3)))
    a = _preactivation(xw, h_prev, w_hh, b_hh, out=cache.gates)
    sigmoid(a[:, :2 * H], out=a[:, :2 * H])  # i, f
    np.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])  # g
    sigmoid(a[:, 3 * H:], out=a[:, 3 * H:])  # o
    i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    c = np.multiply(f, c_prev, out=cache.c)
    c += i * g
    np.tanh(c, out=cache.tanh_c)
    h = np.multiply(o, cache.tanh_c, out=cache.h)
    return (h, c), cache


def lstm_step_backward(dstate, cache: LSTMCache, w_hh, dxw=None, dhw=None):
    """dstate (dh, dc) (N, H) -> dxw (N, 4H) = d pre-activations, dhw (= dxw), (dh_prev, dc_prev)."""
    dh, dc = dstate
    H = dh.shape[1]
    a, tanh_c = cache.gates, cache.tanh_c
    i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    da = np.empty_like(a) if dxw is None else dxw
    di, df, dg, do = da[:, :H], da[:, H:2 * H], da[:, 2 * H:3 * H], da[:, 3 * H:]
    np.multiply(dh, tanh_c, out=do)           # dL/do
    dc_total = tanh_c * tanh_c                # dc + dh * o * (1 - tanh(c)^2)
    np.subtract(1.0, dc_total, out=dc_total)
    dc_total *= o
    dc_total *= dh
    dc_total += dc
    np.multiply(dc_total, g, out=di)
    np.multiply(dc_total, cache.c_prev, out=df)
    np.multiply(dc_total, i, out=dg)
    dc_prev = np.multiply(dc_total, f, out=dc_total)
    s = a * a                                 # through the activations: sigmoid' = s - s^2, tanh' = 1 - g^2
    np.subtract(a, s, out=s)
    s[:, 2 * H:3 * H] = 1.0 - g * g
    da *= s
    return da, da, (da @ w_hh, dc_prev)


# --------------------------------------------------------------------------- GRU

@dataclass(frozen=True)
class GRUCache:
    """h_prev (N, H); gates (N, 3H) activations r|z|n; hw_n (N, H) = (h_prev W_hh^T + b_hh)_n; the new h."""

    h_prev: np.ndarray
    gates: np.ndarray
    hw_n: np.ndarray
    h: np.ndarray


def gru_step(xw, state, w_hh, b_hh=None, cache: GRUCache | None = None):
    """One GRU step (PyTorch's: r multiplies hw_n). xw (N, 3H), state (h_prev,), w_hh (3H, H) -> ((h,), cache)."""
    (h_prev,) = state
    H = h_prev.shape[1]
    if cache is None:
        cache = GRUCache(h_prev, np.empty_like(xw), np.empty_like(h_prev), np.empty_like(h_prev))
    a = cache.gates
    hw = h_prev @ w_hh.T                      # (N, 3H)
    if b_hh is not None:
        hw += b_hh
    np.add(xw[:, :2 * H], hw[:, :2 * H], out=a[:, :2 * H])
    sigmoid(a[:, :2 * H], out=a[:, :2 * H])   # r, z
    r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
    cache.hw_n[...] = hw[:, 2 * H:]
    np.multiply(r, cache.hw_n, out=n)
    n += xw[:, 2 * H:]
    np.tanh(n, out=n)
    h = np.subtract(h_prev, n, out=cache.h)   # h = n + z * (h_prev - n)
    h *= z
    h += n
    return (h,), cache


def gru_step_backward(dstate, cache: GRUCache, w_hh, dxw=None, dhw=None):
    """dstate (dh,) (N, H) -> dxw (N, 3H), dhw (N, 3H) (differs in the n block: r * dn), (dh_prev,)."""
    (dh,) = dstate
    H = dh.shape[1]
    a = cache.gates
    r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
    dxw = np.empty_like(a) if dxw is None else dxw
    dhw = np.empty_like(a) if dhw is None else dhw
    dr, dz, dn = dxw[:, :H], dxw[:, H:2 * H], dxw[:, 2 * H:]
    np.subtract(cache.h_prev, n, out=dz)      # dz = dh * (h_prev - n) * z (1 - z)
    dz *= dh
    dz *= z - z * z
    np.subtract(1.0, z, out=dn)               # dn = dh * (1 - z) * (1 - n^2)
    dn *= dh
    dn *= 1.0 - n * n
    np.multiply(dn, cache.hw_n, out=dr)       # dr = dn * hw_n * r (1 - r)
    dr *= r - r * r
    dhw[:, :2 * H] = dxw[:, :2 * H]
    np.multiply(dn, r, out=dhw[:, 2 * H:])
    dh_prev = dhw @ w_hh
    dh_prev += dh * z
    return dxw, dhw, (dh_prev,)


# --------------------------------------------------------------------------- registry

class Cell(NamedTuple):
    """A cell's step pair, its gate count G and the names of its state arrays."""

    step: Callable
    step_backward: Callable
    gates: int
    state_names: tuple[str, ...]


CELLS = {
    "rnn": Cell(rnn_step, rnn_step_backward, 1, ("h",)),
    "lstm": Cell(lstm_step, lstm_step_backward, 4, ("h", "c")),
    "gru": Cell(gru_step, gru_step_backward, 3, ("h",)),
}


def step_caches(cell: str, T: int, N: int, H: int, dtype) -> tuple[list, tuple[np.ndarray, ...]]:
    """Preallocated caches for T steps, chained so step t's new state is step t+1's previous one.

    Returns (caches, states): states holds one (T+1, N, H) buffer per state array,
    [0] the initial state (the caller fills it) and [t+1] the state after step t.
    """
    G = CELLS[cell].gates
    states = tuple(np.empty((T + 1, N, H), dtype) for _ in CELLS[cell].state_names)
    hs = states[0]
    if cell == "rnn":
        return [RNNCache(hs[t], hs[t + 1]) for t in range(T)], states
    gates = np.empty((T, N, G * H), dtype)
    if cell == "lstm":
        cs, tanh_c = states[1], np.empty((T, N, H), dtype)
        return [LSTMCache(hs[t], cs[t], gates[t], tanh_c[t], hs[t + 1], cs[t + 1]) for t in range(T)], states
    hw_n = np.empty((T, N, H), dtype)
    return [GRUCache(hs[t], gates[t], hw_n[t], hs[t + 1]) for t in range(T)], states

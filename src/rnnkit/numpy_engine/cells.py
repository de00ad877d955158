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
unrolls any of them (w_hh may be any view of the (G*H, H) matrix; the layer
passes one whose transpose is contiguous, which BLAS multiplies fastest):

    state, cache = step(xw, state_prev, w_hh, b_hh, cache=None)
    dxw, dhw, dstate_prev = step_backward(dstate, cache, w_hh, dxw=None, dhw=None)

``state`` is a tuple: ``(h,)`` for rnn and gru, ``(h, c)`` for lstm. ``dxw`` is
the gradient of the pre-activation ``xw`` and ``dhw`` that of ``hw = h_prev
W_hh^T + b_hh``, so the caller gets the weight gradients of a whole sequence
in two matmuls: ``dW_ih = sum_t dxw_t^T x_t``, ``dW_hh = sum_t dhw_t^T
h_prev_t`` (for rnn and lstm ``dhw`` is ``dxw``). ``b_hh=None`` means it is
already inside ``xw`` (valid for rnn and lstm, whose biases add linearly; not
for gru's ``b_hn``, which r multiplies).

A cache is a small frozen dataclass of the arrays backward needs. Pass one in
(its arrays views into a layer's preallocated (T, ...) buffers) and the step
writes into it instead of allocating; a cache whose ``gates`` is the very
array passed as ``xw`` (lstm, gru) is updated in place, so the layer needs no
second (T, N, G*H) buffer. ``step(xw, state)`` alone reads as the math.

Speed notes (measured in bench/numpy_engine.py): an elementwise op on a
column block of an (N, G*H) array costs several times the same op on a
contiguous array (numpy runs one short inner loop per row), so the LSTM
activates all four gates with one sigmoid over the whole contiguous buffer
(``tanh(x) = 2 sigmoid(2x) - 1`` for g), and sigmoid itself is one tanh:
``sigmoid(x) = (1 + tanh(x / 2)) / 2`` (no overflow, no exp).
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


def _preactivation(xw, h_prev, w_hh, b_hh, out, scratch=None):
    """out = xw + h_prev W_hh^T (+ b_hh): the gate pre-activations (N, G*H).

    out may be xw itself; the product then goes through `scratch` (N, G*H) when
    given (a fresh 128 KB temporary every step measured ~40 us slower at N=64, H=128).
    """
    if np.may_share_memory(out, xw):
        out += np.matmul(h_prev, w_hh.T, out=scratch)
    else:
        out = np.matmul(h_prev, w_hh.T, out=out)
        out += xw
    if b_hh is not None:
        out += b_hh
    return out


def _blocks(a: np.ndarray, count: int) -> list[np.ndarray]:
    """The `count` gate blocks (N, H) of a (N, count*H), as views."""
    H = a.shape[1] // count
    return [a[:, k * H:(k + 1) * H] for k in range(count)]


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
    """h_prev, c_prev (N, H); gates (N, 4H) activations i|f|g|o; tanh_c, and the new h, c (N, H).

    scratch (N, 4H), if given, is workspace for the step (shared by a layer's steps; backward ignores it).
    """

    h_prev: np.ndarray
    c_prev: np.ndarray
    gates: np.ndarray
    tanh_c: np.ndarray
    h: np.ndarray
    c: np.ndarray
    scratch: np.ndarray | None = None


def _lstm_activate(a: np.ndarray, g: np.ndarray) -> None:
    """In place on a (N, 4H): sigmoid on i, f, o and tanh on g (a's third block), as one sigmoid over the
    contiguous buffer.

    tanh(x) = 2 sigmoid(2x) - 1, so g's block is doubled before and mapped back after:
    two ops on one block instead of separate ops on three.
    """
    g *= 2.0
    sigmoid(a, out=a)
    g *= 2.0
    g -= 1.0


def lstm_step(xw, state, w_hh, b_hh=None, cache: LSTMCache | None = None):
    """One LSTM step. xw (N, 4H), state (h_prev, c_prev), w_hh (4H, H) -> ((h, c), cache)."""
    h_prev, c_prev = state
    if cache is None:
        cache = LSTMCache(h_prev, c_prev, np.empty_like(xw), *(np.empty_like(h_prev) for _ in range(3)))
    a = _preactivation(xw, h_prev, w_hh, b_hh, out=cache.gates, scratch=cache.scratch)
    i, f, g, o = _blocks(a, 4)
    _lstm_activate(a, g)
    c = np.multiply(f, c_prev, out=cache.c)
    ig = np.multiply(i, g, out=cache.tanh_c)  # tanh_c is free until tanh(c) fills it
    c += ig
    tanh_c = np.tanh(c, out=cache.tanh_c)
    h = np.multiply(o, tanh_c, out=cache.h)
    return (h, c), cache


def lstm_step_backward(dstate, cache: LSTMCache, w_hh, dxw=None, dhw=None):
    """dstate (dh, dc) (N, H) -> dxw (N, 4H) = d pre-activations, dhw (= dxw), (dh_prev, dc_prev)."""
    dh, dc = dstate
    a, tanh_c = cache.gates, cache.tanh_c
    i, f, g, o = _blocks(a, 4)
    da = np.empty_like(a) if dxw is None else dxw
    di, df, dg, do = _blocks(da, 4)
    np.multiply(dh, tanh_c, out=do)           # h = o tanh(c)
    dct = np.multiply(tanh_c, tanh_c)         # dc_total = dc + dh o (1 - tanh(c)^2)
    np.subtract(1.0, dct, out=dct)
    dct *= o
    dct *= dh
    dct += dc
    np.multiply(dct, g, out=di)               # c = f c_prev + i g
    np.multiply(dct, cache.c_prev, out=df)
    np.multiply(dct, i, out=dg)
    dc_prev = np.multiply(dct, f, out=dct)
    slope = np.multiply(a, a)                 # through the activations: sigmoid' = s - s^2 (whole buffer),
    np.subtract(a, slope, out=slope)          # then g's block: tanh' = 1 - g^2
    slope_g = _blocks(slope, 4)[2]
    np.multiply(g, g, out=slope_g)
    np.subtract(1.0, slope_g, out=slope_g)
    da *= slope
    return da, da, (da @ w_hh, dc_prev)


# --------------------------------------------------------------------------- GRU

@dataclass(frozen=True)
class GRUCache:
    """h_prev (N, H); gates (N, 3H) activations r|z|n; hw (N, 3H) = h_prev W_hh^T + b_hh; the new h."""

    h_prev: np.ndarray
    gates: np.ndarray
    hw: np.ndarray
    h: np.ndarray


def gru_step(xw, state, w_hh, b_hh=None, cache: GRUCache | None = None):
    """One GRU step (PyTorch's: r multiplies hw_n). xw (N, 3H), state (h_prev,), w_hh (3H, H) -> ((h,), cache)."""
    (h_prev,) = state
    if cache is None:
        cache = GRUCache(h_prev, np.empty_like(xw), np.empty_like(xw), np.empty_like(h_prev))
    a, hw = cache.gates, np.matmul(h_prev, w_hh.T, out=cache.hw)  # (N, 3H)
    if b_hh is not None:
        hw += b_hh
    if not np.may_share_memory(a, xw):
        a[...] = xw
    H = h_prev.shape[1]
    rz, hw_n = a[:, :2 * H], hw[:, 2 * H:]
    rz += hw[:, :2 * H]
    sigmoid(rz, out=rz)                       # r, z
    r, z, n = _blocks(a, 3)
    n += r * hw_n                             # n = tanh(xw_n + r * hw_n)
    np.tanh(n, out=n)
    h = np.subtract(h_prev, n, out=cache.h)   # h = n + z * (h_prev - n)
    h *= z
    h += n
    return (h,), cache


def gru_step_backward(dstate, cache: GRUCache, w_hh, dxw=None, dhw=None):
    """dstate (dh,) (N, H) -> dxw (N, 3H), dhw (N, 3H) (differs in the n block: r * dn), (dh_prev,)."""
    (dh,) = dstate
    r, z, n = _blocks(cache.gates, 3)
    hw_n = _blocks(cache.hw, 3)[2]
    dxw = np.empty_like(cache.gates) if dxw is None else dxw
    dhw = np.empty_like(cache.gates) if dhw is None else dhw
    dr, dz, dn = _blocks(dxw, 3)
    np.subtract(cache.h_prev, n, out=dz)      # dz = dh (h_prev - n) z (1 - z)
    dz *= dh
    dz *= z - z * z
    np.subtract(1.0, z, out=dn)               # dn = dh (1 - z) (1 - n^2)
    dn *= dh
    dn *= 1.0 - n * n
    np.multiply(dn, hw_n, out=dr)             # dr = dn hw_n r (1 - r)
    dr *= r - r * r
    H = dh.shape[1]
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


class Workspace:
    """Buffers kept between calls and reused while big enough: name -> flat array, viewed in any shape.

    A fresh (T, N, ...) buffer costs a page fault at the first write of every
    page, so every step of every batch would pay for its slice again (measured
    at N=64, H=128: 40-60 us per LSTM step, a quarter of its time); a reused
    one is faulted in once. The price: what a layer returns from its workspace
    is valid until its next forward.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised array of `shape` and `dtype` in the buffer `name` (grown when too small)."""
        size = int(np.prod(shape))
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = self._buffers[name] = np.empty(size, dtype)
        return buffer[:size].reshape(shape)


def step_caches(cell: str, xw: np.ndarray, workspace: Workspace | None = None) -> tuple[list, tuple[np.ndarray, ...]]:
    """Caches for the T steps of xw (T, N, G*H), chained so step t's new state is step t+1's previous one.

    For lstm and gru the caches update xw in place (xw[t] becomes step t's gate
    activations). Returns (caches, states): states holds one (T+1, N, H) buffer
    per state array, [0] the initial state (the caller fills it) and [t+1] the
    state after step t. Buffers come from `workspace` when given.
    """
    T, N, GH = xw.shape
    H = GH // CELLS[cell].gates
    ws = workspace or Workspace()
    hs = ws.get("h", (T + 1, N, H), xw.dtype)
    if cell == "rnn":
        return [RNNCache(hs[t], hs[t + 1]) for t in range(T)], (hs,)
    if cell == "lstm":
        cs, tanh_c = ws.get("c", (T + 1, N, H), xw.dtype), ws.get("tanh_c", (T, N, H), xw.dtype)
        scratch = ws.get("scratch", (N, GH), xw.dtype)
        return [LSTMCache(hs[t], cs[t], xw[t], tanh_c[t], hs[t + 1], cs[t + 1], scratch) for t in range(T)], (hs, cs)
    hw = ws.get("hw", xw.shape, xw.dtype)
    return [GRUCache(hs[t], xw[t], hw[t], hs[t + 1]) for t in range(T)], (hs,)

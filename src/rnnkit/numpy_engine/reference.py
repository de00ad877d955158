"""The readable reference: RNN, LSTM and GRU forward and BPTT as short loops, and nothing else.

The fast code (`cells`, `recurrent`, `inference`) is tested against this module
(tests/test_numpy_reference.py), and this module against finite differences
and torch.nn. It is written to be read, not to be fast: one pure step function
per cell and its backward, one loop over time, fresh arrays everywhere (no
buffers, no ``out=``, no in-place updates beyond summing gradients), and
batch-first arrays as at the engine's surface.

Key: N batch, T time, D input size, H hidden size, G gate blocks, L layers,
K directions. One layer and direction has PyTorch's four weights, in a dict
under the names `recurrent.Recurrent.params` uses::

    weight_ih (G*H, D), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,)
    G = 1 rnn, 4 lstm (blocks i|f|g|o), 3 gru (blocks r|z|n)

The cells (``x_*`` and ``h_*`` the gate blocks of ``x W_ih^T + b_ih`` and of
``h_prev W_hh^T + b_hh``)::

    rnn   h = tanh(x W_ih^T + b_ih + h_prev W_hh^T + b_hh)
    lstm  i = sigmoid(x_i + h_i),  f = sigmoid(x_f + h_f),  g = tanh(x_g + h_g),  o = sigmoid(x_o + h_o)
          c = f * c_prev + i * g,  h = o * tanh(c)
    gru   r = sigmoid(x_r + h_r),  z = sigmoid(x_z + h_z)
          n = tanh(x_n + r * h_n)          (r multiplies h_n, bias b_hn included)
          h = (1 - z) * n + z * h_prev

A state is a tuple: ``(h,)`` for rnn and gru, ``(h, c)`` for lstm, each (N, H).
Every step pair has the same interface, so one loop runs any cell::

    state, step_cache = step(x_t, state_prev, params)
    dx_t, dstate_prev, step_grads = step_backward(dstate, step_cache, params)

Variable lengths, as the fast layer: a post-padded sequence of length l has
real steps t < l. At a padded step its state is carried through unchanged and
its output is that carried state (the last real one); its padded inputs get a
zero gradient. The reverse direction of a bidirectional layer reads each
sequence reversed within its own length (`reverse_within_lengths`) and its
outputs are put back in the original order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

PARAM_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _weight_grads(dxw, dhw, x, h_prev) -> dict[str, np.ndarray]:
    """One step's weight gradients from dxw = dL/d(x W_ih^T + b_ih) and dhw = dL/d(h_prev W_hh^T + b_hh), (N, G*H)."""
    return {"weight_ih": dxw.T @ x, "weight_hh": dhw.T @ h_prev,
            "bias_ih": dxw.sum(axis=0), "bias_hh": dhw.sum(axis=0)}


# --------------------------------------------------------------------------- vanilla RNN

@dataclass(frozen=True)
class RNNStep:
    """What rnn_step_backward needs: x (N, D), h_prev (N, H), h (N, H)."""

    x: np.ndarray
    h_prev: np.ndarray
    h: np.ndarray


def rnn_step(x, state, p):
    """x (N, D), state (h_prev,) -> (h,), RNNStep. h = tanh(x W_ih^T + b_ih + h_prev W_hh^T + b_hh)."""
    (h_prev,) = state
    h = np.tanh(x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"])
    return (h,), RNNStep(x, h_prev, h)


def rnn_step_backward(dstate, s: RNNStep, p):
    """dstate (dh,) (N, H), the gradient of the new state -> dx (N, D), (dh_prev,), this step's weight gradients."""
    (dh,) = dstate
    da = dh * (1.0 - s.h ** 2)                          # h = tanh(a), tanh' = 1 - tanh^2
    return da @ p["weight_ih"], (da @ p["weight_hh"],), _weight_grads(da, da, s.x, s.h_prev)


# --------------------------------------------------------------------------- LSTM

@dataclass(frozen=True)
class LSTMStep:
    """What lstm_step_backward needs: x (N, D); h_prev, c_prev, the gates i, f, g, o and the new c, each (N, H)."""

    x: np.ndarray
    h_prev: np.ndarray
    c_prev: np.ndarray
    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray


def lstm_step(x, state, p):
    """x (N, D), state (h_prev, c_prev) -> (h, c), LSTMStep."""
    h_prev, c_prev = state
    a = x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]  # (N, 4H)
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return (h, c), LSTMStep(x, h_prev, c_prev, i, f, g, o, c)


def lstm_step_backward(dstate, s: LSTMStep, p):
    """dstate (dh, dc) (N, H) -> dx (N, D), (dh_prev, dc_prev), this step's weight gradients."""
    dh, dc = dstate
    tanh_c = np.tanh(s.c)
    do = dh * tanh_c                                    # h = o tanh(c)
    dc = dc + dh * s.o * (1.0 - tanh_c ** 2)            # c reaches the loss itself and through h
    di = dc * s.g                                       # c = f c_prev + i g
    df = dc * s.c_prev
    dg = dc * s.i
    dc_prev = dc * s.f
    da = np.concatenate([di * s.i * (1.0 - s.i),        # sigmoid' = s (1 - s)
                         df * s.f * (1.0 - s.f),
                         dg * (1.0 - s.g ** 2),         # tanh' = 1 - tanh^2
                         do * s.o * (1.0 - s.o)], axis=1)  # (N, 4H), blocks i|f|g|o
    return da @ p["weight_ih"], (da @ p["weight_hh"], dc_prev), _weight_grads(da, da, s.x, s.h_prev)


# --------------------------------------------------------------------------- GRU

@dataclass(frozen=True)
class GRUStep:
    """What gru_step_backward needs: x (N, D); h_prev, the gates r, z, n and h_n (the n block of
    h_prev W_hh^T + b_hh), each (N, H)."""

    x: np.ndarray
    h_prev: np.ndarray
    r: np.ndarray
    z: np.ndarray
    n: np.ndarray
    h_n: np.ndarray


def gru_step(x, state, p):
    """x (N, D), state (h_prev,) -> (h,), GRUStep (PyTorch's GRU: r multiplies h_n)."""
    (h_prev,) = state
    x_r, x_z, x_n = np.split(x @ p["weight_ih"].T + p["bias_ih"], 3, axis=1)
    h_r, h_z, h_n = np.split(h_prev @ p["weight_hh"].T + p["bias_hh"], 3, axis=1)
    r = sigmoid(x_r + h_r)
    z = sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * h_n)
    h = (1.0 - z) * n + z * h_prev
    return (h,), GRUStep(x, h_prev, r, z, n, h_n)


def gru_step_backward(dstate, s: GRUStep, p):
    """dstate (dh,) (N, H) -> dx (N, D), (dh_prev,), this step's weight gradients."""
    (dh,) = dstate
    dn = dh * (1.0 - s.z)                               # h = (1 - z) n + z h_prev
    dz = dh * (s.h_prev - s.n)
    da_n = dn * (1.0 - s.n ** 2)                        # n = tanh(x_n + r h_n)
    dr = da_n * s.h_n
    dh_n = da_n * s.r
    da_r = dr * s.r * (1.0 - s.r)                       # r = sigmoid(x_r + h_r)
    da_z = dz * s.z * (1.0 - s.z)                       # z = sigmoid(x_z + h_z)
    dxw = np.concatenate([da_r, da_z, da_n], axis=1)    # (N, 3H): gradient of x W_ih^T + b_ih
    dhw = np.concatenate([da_r, da_z, dh_n], axis=1)    # (N, 3H): gradient of h_prev W_hh^T + b_hh
    dh_prev = dh * s.z + dhw @ p["weight_hh"]
    return dxw @ p["weight_ih"], (dh_prev,), _weight_grads(dxw, dhw, s.x, s.h_prev)


# --------------------------------------------------------------------------- one layer, one direction

class Cell(NamedTuple):
    """A cell's step pair, its gate blocks G and how many state arrays it has (1: (h,); 2: (h, c))."""

    step: Callable
    step_backward: Callable
    gates: int
    states: int


CELLS = {"rnn": Cell(rnn_step, rnn_step_backward, 1, 1),
         "lstm": Cell(lstm_step, lstm_step_backward, 4, 2),
         "gru": Cell(gru_step, gru_step_backward, 3, 1)}


@dataclass(frozen=True)
class Cache:
    """What `backward` needs: the cell, its params, the T step caches in time order, active (N, T) or None."""

    cell: str
    params: dict
    steps: list
    active: np.ndarray | None


def forward(cell: str, x: np.ndarray, params: dict, state: tuple | None = None, lengths=None):
    """x (N, T, D) -> outputs (N, T, H), final state ((h,) or (h, c), each (N, H)), Cache.

    params: one layer and direction's four weights (`PARAM_KINDS`).
    state: the initial state, a tuple like the final one; None starts from zeros.
    lengths (N,): each sequence's real steps (post-padded, 0..T); None: all T.
    """
    N, T, D = _check(cell, x, params, state, lengths)
    H = params["weight_hh"].shape[1]
    if state is None:
        state = tuple(np.zeros((N, H), x.dtype) for _ in range(CELLS[cell].states))
    active = None if lengths is None else np.arange(T)[None, :] < np.asarray(lengths)[:, None]  # (N, T)
    outputs, steps = [], []
    for t in range(T):
        new, step_cache = CELLS[cell].step(x[:, t], state, params)
        if active is not None:                          # a finished sequence keeps its state
            real = active[:, t, None]                   # (N, 1)
            new = tuple(np.where(real, s_new, s_old) for s_new, s_old in zip(new, state))
        state = new
        outputs.append(state[0])                        # output t is the new h
        steps.append(step_cache)
    return np.stack(outputs, axis=1), state, Cache(cell, params, steps, active)


def backward(d_outputs: np.ndarray | None, d_final: tuple | None, cache: Cache):
    """BPTT. d_outputs (N, T, H) = dL/d outputs, d_final (like the final state) = dL/d final state (None: zero)
    -> dx (N, T, D), d_state0 (like the initial state), grads (name -> array, like params)."""
    step_backward, p = CELLS[cache.cell].step_backward, cache.params
    T = len(cache.steps)
    N, H = cache.steps[0].h_prev.shape
    dtype = cache.steps[0].h_prev.dtype
    if d_outputs is None:
        d_outputs = np.zeros((N, T, H), dtype)
    if d_final is None:
        d_final = tuple(np.zeros((N, H), dtype) for _ in range(CELLS[cache.cell].states))
    grads = {kind: np.zeros_like(p[kind]) for kind in PARAM_KINDS}
    dstate, dxs = tuple(d_final), []
    for t in reversed(range(T)):
        dstate = (dstate[0] + d_outputs[:, t],) + dstate[1:]  # h_t is output t and the next step's h_prev
        if cache.active is None:
            dx, dstate, step_grads = step_backward(dstate, cache.steps[t], p)
        else:                                           # a padded step passes its gradient by the cell
            real = cache.active[:, t, None]
            d_cell = tuple(np.where(real, d, 0.0) for d in dstate)
            dx, d_prev, step_grads = step_backward(d_cell, cache.steps[t], p)
            dstate = tuple(np.where(real, d_p, d) for d_p, d in zip(d_prev, dstate))
        for kind in PARAM_KINDS:                        # a shared weight's gradient is the sum over steps
            grads[kind] += step_grads[kind]
        dxs.append(dx)
    return np.stack(dxs[::-1], axis=1), dstate, grads


def _check(cell, x, params, state, lengths) -> tuple[int, int, int]:
    """Shapes up front, with the expected and the actual; returns N, T, D."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}; got {cell!r}")
    G = CELLS[cell].gates
    if x.ndim != 3 or x.shape[1] < 1:
        raise ValueError(f"x must be (N, T, D) with T >= 1; got {x.shape}")
    N, T, D = x.shape
    GH, H = params["weight_hh"].shape
    expected = {"weight_ih": (G * H, D), "weight_hh": (G * H, H), "bias_ih": (G * H,), "bias_hh": (G * H,)}
    for kind, shape in expected.items():
        if params[kind].shape != shape:
            raise ValueError(f"{kind} of a {cell} with D={D}, H={H} must be {shape}; got {params[kind].shape}")
    if state is not None and [s.shape for s in state] != [(N, H)] * CELLS[cell].states:
        raise ValueError(f"a {cell} state is {CELLS[cell].states} array(s) (N, H) = {(N, H)}; "
                         f"got {[s.shape for s in state]}")
    if lengths is not None and (np.shape(lengths) != (N,) or np.min(lengths) < 0 or np.max(lengths) > T):
        raise ValueError(f"lengths must be (N,) = ({N},) with values in 0..{T}; got {np.asarray(lengths)!r}")
    return N, T, D


# --------------------------------------------------------------------------- directions and layers

def reverse_within_lengths(x: np.ndarray, lengths=None) -> np.ndarray:
    """x (N, T, ...) with each sequence's first lengths[n] steps reversed, padding left where it is.

    Its own inverse, so it also maps the reverse direction's outputs and gradients back.
    """
    if lengths is None:
        return x[:, ::-1]
    return np.stack([np.concatenate([row[:l][::-1], row[l:]]) for row, l in zip(x, lengths)])


@dataclass(frozen=True)
class StackCache:
    """What `stack_backward` needs: one `Cache` per layer and direction (layer-major), the shape and lengths."""

    caches: list
    num_layers: int
    directions: int
    lengths: np.ndarray | None
    prefix: str


def _name(prefix: str, kind: str, layer: int, direction: int) -> str:
    return f"{prefix}{kind}_l{layer}{'_reverse' if direction else ''}"


def stack_forward(cell: str, x: np.ndarray, params: dict, num_layers: int = 1, bidirectional: bool = False,
                  state: tuple | None = None, lengths=None, prefix: str = ""):
    """x (N, T, D) -> outputs (N, T, K*H), final state (h,) or (h, c) each (L*K, N, H), StackCache.

    As torch.nn.RNN/LSTM/GRU with batch_first: params under PyTorch's names
    (``{prefix}weight_ih_l{layer}[_reverse]``, ...), states layer-major, layer
    L+1 reads layer L's outputs (forward features, then reverse).
    """
    K = 2 if bidirectional else 1
    finals, caches = [], []
    for layer in range(num_layers):
        outputs = []
        for d in range(K):
            p = {kind: params[_name(prefix, kind, layer, d)] for kind in PARAM_KINDS}
            s0 = None if state is None else tuple(s[layer * K + d] for s in state)
            inputs = x if d == 0 else reverse_within_lengths(x, lengths)
            out, final, cache = forward(cell, inputs, p, s0, lengths)
            outputs.append(out if d == 0 else reverse_within_lengths(out, lengths))
            finals.append(final)
            caches.append(cache)
        x = np.concatenate(outputs, axis=2)
    stacked = tuple(np.stack(parts) for parts in zip(*finals))
    return x, stacked, StackCache(caches, num_layers, K, lengths, prefix)


def stack_backward(d_outputs: np.ndarray | None, d_final: tuple | None, cache: StackCache):
    """d_outputs (N, T, K*H), d_final (like the final state, or None)
    -> dx (N, T, D), d_state0 (like the state), grads (PyTorch's names -> array)."""
    K, lengths = cache.directions, cache.lengths
    grads, d_initial = {}, [None] * (cache.num_layers * K)
    for layer in reversed(range(cache.num_layers)):
        d_outs = [None] * K if d_outputs is None else np.split(d_outputs, K, axis=2)
        dx_layer = 0.0
        for d in range(K):
            index = layer * K + d
            d_out = d_outs[d] if d == 0 or d_outs[d] is None else reverse_within_lengths(d_outs[d], lengths)
            d_fin = None if d_final is None else tuple(s[index] for s in d_final)
            dx, d_initial[index], g = backward(d_out, d_fin, cache.caches[index])
            dx_layer = dx_layer + (dx if d == 0 else reverse_within_lengths(dx, lengths))
            grads.update({_name(cache.prefix, kind, layer, d): g[kind] for kind in PARAM_KINDS})
        d_outputs = dx_layer                            # the layer below's outputs are this layer's inputs
    return d_outputs, tuple(np.stack(parts) for parts in zip(*d_initial)), grads

"""The inference-only forward of a many-to-one model: packed steps, both directions at once, no caches.

Key: N batch, T time, S real steps (sum of the lengths), D input size,
H hidden size, G gate blocks, K directions, E embedding size, O outputs.

(A one_to_one model, the bag of words, has no recurrence: `bag_of_words_logits`.)

`many_to_one_logits(config, params, ids, lengths)` gives the logits of
`ManyToOne.forward` (same weights and semantics, float32 within 1e-5) at a
fraction of the cost, because inference needs nothing the training forward
keeps for BPTT:

- no padding: the batch is sorted by length and packed (`packing`), so step t
  runs only the n_t sequences still going, and the input projection covers the
  S real steps (one matmul per direction and gate) instead of the (T, N) grid;
- both directions of a bidirectional layer in the same step: their states are
  stacked (K, n, H) and multiplied by their stacked W_hh in one call (the
  reverse direction has the same lengths, hence the same n_t);
- no caches: a step's gates are scratch, overwritten by the next step;
- pooling reads the packed outputs run by run, without an argmax (that only
  tells backward where the maximum was);
- a step's views (gate blocks, the running prefix of the cell state) are made
  once per run of steps with the same n, not every step; a run of up to 16
  sequences copies its share into contiguous blocks first (`recur`: 10-19%
  faster for a bidirectional GRU at batch 2-16);
- one sequence through one direction (`predict` on one text with a
  unidirectional model) takes `recur_one`: a vector-matrix product and
  contiguous vectors per step (LSTM 230 steps: 2.3 -> 1.22-1.27 ms, bench/numpy_engine.py; its
  matmuls alone take 0.72-0.75 ms, so the elementwise calls, not the products, are what is left to cut);
- scoring many texts, the first layer's input share of frequent tokens comes
  from a precomputed table (`input_table.InputTable`), not a matmul.

Layouts are chosen for numpy's cost per call. An elementwise op on a
contiguous array costs ~0.3 us plus the work; on a strided view (a gate's
columns of an (n, G*H) array) numpy runs one inner loop per row, ~0.13 us
each: measured 3.6 us against 0.6 us for an add at n = 16. So a step's gate
pre-activations are gate-major, (G, K, n, H): each gate block of both
directions is contiguous, and every op of a step is one call on both
directions. Sigmoids are computed as 0.5 + 0.5 tanh(x / 2) with the halving
folded into the weights of the sigmoid gates (exact: a power of two), and the
LSTM's gates are reordered i, f, o, g so its three sigmoid gates are one block.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rnnkit.config import ModelConfig
from rnnkit.numpy_engine import blas
from rnnkit.numpy_engine.cells import Workspace
from rnnkit.numpy_engine.layers import token_mask
from rnnkit.numpy_engine.packing import Packing, max_over_steps, pack, pack_ids, sum_over_steps

# PyTorch's gate blocks, reordered so the sigmoid gates come first (lstm i, f, g, o -> i, f, o, g)
GATE_ORDER = {"rnn": (0,), "lstm": (0, 1, 3, 2), "gru": (0, 1, 2)}
SIGMOID_GATES = {"rnn": 0, "lstm": 3, "gru": 2}  # how many of the reordered blocks are sigmoid gates


# An lstm's blocks for one sequence, from LayerWeights' i, f, o, g: o, i, f, g. With the cell state kept
# right after g, [i, f] and [g, c] are then contiguous, and i * g, f * c is one multiply (`_lstm_one`).
FLAT_LSTM_ORDER = [2, 0, 1, 3]


@dataclass(frozen=True)
class LayerWeights:
    """One layer's weights for inference, directions stacked, gate-major.

    w_ih (K, G, D, H) and w_hh (G, K, H, H): transposed, so x @ w_ih[k, g] and h @ w_hh[g, k];
    bias (G, K, 1, H): b_ih + b_hh, except gru's b_hn (K, 1, H), which r multiplies and so stays apart.
    Sigmoid gates' rows are halved (see the module docstring).
    """

    w_ih: np.ndarray
    w_hh: np.ndarray
    bias: np.ndarray
    b_hn: np.ndarray | None

    @cached_property  # written into the instance's __dict__, which a frozen dataclass allows
    def flat(self) -> "FlatWeights":
        """A unidirectional layer's weights for one sequence (`recur_one`), made on first use and kept."""
        K, G, D, H = self.w_ih.shape
        if K != 1:
            raise ValueError(f"flat weights are for one direction; this layer has {K}")
        blocks = FLAT_LSTM_ORDER if G == 4 else list(range(G))
        return FlatWeights(w_ih=np.ascontiguousarray(self.w_ih[0, blocks].transpose(1, 0, 2).reshape(D, G * H)),
                           w_hh=np.ascontiguousarray(self.w_hh[blocks, 0].transpose(1, 0, 2).reshape(H, G * H)),
                           bias=np.ascontiguousarray(self.bias[blocks, 0, 0, :].reshape(G * H)),
                           b_hn=None if self.b_hn is None else self.b_hn[0, 0])


@dataclass(frozen=True)
class FlatWeights:
    """One direction's weights for a single sequence, the gates side by side: w_ih (D, G*H),
    w_hh (H, G*H), bias (G*H,), b_hn (H,) or None; halved sigmoid rows as in LayerWeights, gate order
    too except an lstm's (`FLAT_LSTM_ORDER`). A step is then one vector-matrix product h @ w_hh into
    a contiguous (G*H,) row."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    bias: np.ndarray
    b_hn: np.ndarray | None


def layer_weights(cell: str, params: dict, prefix: str, layer: int, directions: int) -> LayerWeights:
    """The LayerWeights of layer `layer` from PyTorch-named params (`{prefix}weight_ih_l0_reverse`, ...)."""
    order, sigmoids = list(GATE_ORDER[cell]), SIGMOID_GATES[cell]
    G = len(order)
    w_ih, w_hh, bias, b_hn = [], [], [], []
    for d in range(directions):
        name = f"l{layer}{'_reverse' if d else ''}"
        p = {kind: params[f"{prefix}{kind}_{name}"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        H = p["weight_hh"].shape[1]
        scale = np.ones((G, 1), p["weight_hh"].dtype)
        scale[:sigmoids] = 0.5
        b_ih, b_hh = (p[k].reshape(G, H)[order] for k in ("bias_ih", "bias_hh"))
        if cell == "gru":  # b_hn sits inside r * (.): only b_hr and b_hz add to the input's share
            b_hn.append(b_hh[2].copy())
            b_hh = b_hh.copy()
            b_hh[2] = 0.0
        w_ih.append((p["weight_ih"].reshape(G, H, -1)[order] * scale[:, :, None]).transpose(0, 2, 1))
        w_hh.append((p["weight_hh"].reshape(G, H, H)[order] * scale[:, :, None]).transpose(0, 2, 1))
        bias.append((b_ih + b_hh) * scale)
    return LayerWeights(w_ih=np.ascontiguousarray(np.stack(w_ih)),
                        w_hh=np.ascontiguousarray(np.stack(w_hh, axis=1)),
                        bias=np.stack(bias, axis=1)[:, :, None, :],
                        b_hn=np.stack(b_hn)[:, None, :] if b_hn else None)


def project(inputs: list[np.ndarray], weights: LayerWeights) -> np.ndarray:
    """Each direction's inputs (S, D) -> pre-activations (G, K, S, H): x W_ih^T + bias for every real step."""
    K, G, D, H = weights.w_ih.shape
    S = inputs[0].shape[0]
    pre = np.empty((G, K, S, H), np.result_type(inputs[0], weights.w_ih))
    for k, x in enumerate(inputs):
        np.matmul(x, weights.w_ih[k], out=pre[:, k])  # G products (S, D) x (D, H)
    pre += weights.bias
    return pre


# --------------------------------------------------------------------------- one step of each cell
# hw (G, K, rows, H) = h_prev @ w_hh (its gate blocks made once per run: `_gate_views`); pre: the step's input
# share (G, K, rows, H), or (rz (2, K, rows, H), n (K, rows, H)) for gru; h_prev, h (K, rows, H): the state
# before and where the new one goes; c (K, rows, H): the lstm's cell state. Each writes h.
# numpy ufuncs get out= positionally: at this size the keyword's parsing costs about as much as the work.

def _rnn_step(pre, h_prev, hw, h, gates, c):
    np.add(hw, pre, hw)
    np.tanh(hw[0], h)


def _gru_step(pre, h_prev, hw, h, gates, c):
    rz, r, z, n, b_hn, half = gates
    pre_rz, pre_n = pre
    np.add(rz, pre_rz, rz)
    np.tanh(rz, rz)              # rz held halved pre-activations: r, z = sigmoid(.)
    np.multiply(rz, half, rz)
    np.add(rz, half, rz)
    np.add(n, b_hn, n)           # n = tanh(pre_n + r * (h W_hn^T + b_hn))
    np.multiply(n, r, n)
    np.add(n, pre_n, n)
    np.tanh(n, n)
    np.subtract(h_prev, n, h)    # h = n + z * (h_prev - n)
    np.multiply(h, z, h)
    np.add(h, n, h)


def _lstm_step(pre, h_prev, hw, h, gates, c):
    sigmoids, i, f, o, g, half = gates
    np.add(hw, pre, hw)
    np.tanh(hw, hw)              # i, f, o (halved pre-activations) and g
    np.multiply(sigmoids, half, sigmoids)
    np.add(sigmoids, half, sigmoids)
    np.multiply(c, f, c)         # c = f * c_prev + i * g
    np.multiply(i, g, i)
    np.add(c, i, c)
    np.tanh(c, g)                # h = o * tanh(c)
    np.multiply(o, g, h)


STEPS = {"rnn": _rnn_step, "lstm": _lstm_step, "gru": _gru_step}


def _gate_views(cell: str, hw: np.ndarray, b_hn: np.ndarray | None) -> tuple:
    """The views of hw (G, K, rows, H) a step of `cell` works on; b_hn: gru's, (K, rows, H) (`_b_hn`)."""
    half = hw.dtype.type(0.5)
    if cell == "gru":
        return hw[:2], hw[0], hw[1], hw[2], b_hn, half
    if cell == "lstm":
        return hw[:3], hw[0], hw[1], hw[2], hw[3], half
    return ()


BLOCKS_UP_TO = 16  # a run of at most this many sequences is copied into blocks of its own (`recur`)


def recur(cell: str, pre: np.ndarray, weights: LayerWeights, packing: Packing) -> np.ndarray:
    """Pre-activations (G, K, S, H) -> outputs (K, S, H), packed; each direction in its own step order.

    Step t's new state goes into its rows of the outputs, and step t + 1 reads
    its previous state from there (the first n_{t+1} of those rows: the
    sequences still running). An lstm's cell state lives in (K, N', H), on the
    running prefix. The steps go run by run (`packing.runs`: consecutive steps
    with the same n), on `padded(n)` rows, with the views a step needs made
    once per run. A run of up to `BLOCKS_UP_TO` sequences copies its input share
    and state into contiguous blocks of its own (`_run_in_blocks`); a larger
    one works on views of the packed arrays (`_run_in_views`). Per step of a
    bidirectional layer, H = 128 (us, rnn / gru / lstm; bench/inference_runs.py):

        n                1                  2                  8                   16                   32
        views   4.3 / 11.4 / 10.6   8.7 / 25.9 / 28.8   11.6 / 34.0 / 40.8   16.2 / 48.3 / 60.2   26.1 / 84.6 / 104.7
        blocks  3.0 /  8.0 /  9.4   7.5 / 22.1 / 27.6   10.4 / 30.7 / 39.7   15.4 / 46.5 / 61.2   26.3 / 87.1 / 110.5

    On views each step makes ~5 views (~0.2 us each) and its ops read strided
    operands (~0.3 us more each); the copy costs more with n. A batch of 8
    reviews of 60-400 steps: 9.4 / 28.4 / 36.0 against 10.6 / 32.1 / 37.7 us
    a step on views alone.
    """
    G, K, S, H = pre.shape
    out = np.zeros((K, S, H), pre.dtype)  # zeros: padding rows read before any step wrote them stay finite
    c_all = np.zeros((K, padded(len(packing.lengths)), H), pre.dtype) if cell == "lstm" else None
    previous = None  # the first packed row of the step before: its state is out[:, previous:previous + n]
    with blas.single_threaded():  # small matmuls: thread hand-offs cost more than they save
        for start, stop, n in packing.runs:
            run = _run_in_blocks if n <= BLOCKS_UP_TO else _run_in_views
            previous = run(cell, pre, weights, packing.offsets[start:stop + 1], n, out, c_all, previous)
    return out


def padded(n: int) -> int:
    """The rows a step's matmul runs on: n up to a multiple of 4 (n = 1 stays: a vector-matrix product).

    OpenBLAS multiplies 4k rows much faster than 4k - 1, 4k - 2 or 4k - 3 (measured for (n, 128) x (128, 128)
    at 2 directions x 3 gates: n = 3 24.4 us, n = 4 15.7 us; n = 7 31.5 us, n = 8 22.6 us). The rows past n
    hold zeros or other sequences' states: they change nothing real.
    """
    return n if n == 1 else -(-n // 4) * 4


def _b_hn(weights: LayerWeights, rows: int) -> np.ndarray | None:
    """gru's b_hn (K, 1, H) broadcast to (K, rows, H): a broadcast operand costs numpy 0.9 us a call against
    0.35 us for a full one (measured at 8 rows)."""
    if weights.b_hn is None:
        return None
    K, _, H = weights.b_hn.shape
    return np.ascontiguousarray(np.broadcast_to(weights.b_hn, (K, rows, H)))


_local = threading.local()


def _workspace() -> Workspace:
    """This thread's buffers for the blocks of `_run_in_blocks`, kept between calls and grown to the largest
    run seen (at most 16 sequences wide: a few MB for reviews of a few hundred tokens)."""
    if not hasattr(_local, "workspace"):
        _local.workspace = Workspace()
    return _local.workspace


def _run_in_blocks(cell, pre, weights, offsets, n, out, c_all, previous) -> int:
    """One run's steps on blocks of its own: its input share (steps, G, K, rows, H), its states and outputs
    (steps, K, rows, H), contiguous, zeros past n; the state comes from the packed outputs (an lstm's cell
    state from c_all) and goes back there. Returns the first packed row of the run's last step.
    The two large blocks live in this thread's `_workspace()`: allocated fresh, their page faults made
    rnn's blocks slower than views (n = 8: 17.0 against 11.6 us a step)."""
    G, K, S, H = pre.shape
    steps, first, last, rows = len(offsets) - 1, offsets[0], offsets[-1], padded(n)
    space = _workspace()
    inputs = space.get("inputs", (steps, G, K, rows, H), pre.dtype)
    inputs[:, :, :, :n] = pre[:, :, first:last].reshape(G, K, steps, n, H).transpose(2, 0, 1, 3, 4)
    inputs[:, :, :, n:] = 0.0
    h = np.zeros((K, rows, H), pre.dtype)
    if previous is not None:
        h[:, :n] = out[:, previous:previous + n]
    c = None if c_all is None else np.ascontiguousarray(c_all[:, :rows])
    outputs = space.get("outputs", (steps, K, rows, H), pre.dtype)
    hw = np.empty((G, K, rows, H), pre.dtype)
    gates, step, w_hh = _gate_views(cell, hw, _b_hn(weights, rows)), STEPS[cell], weights.w_hh
    step_inputs = zip(inputs[:, :2], inputs[:, 2]) if cell == "gru" else inputs
    for step_pre, new in zip(step_inputs, outputs):
        np.matmul(h, w_hh, hw)  # G*K products (rows, H) x (H, H), one call
        step(step_pre, h, hw, new, gates, c)
        h = new
    out[:, first:last].reshape(K, steps, n, H)[...] = outputs[:, :, :n].transpose(1, 0, 2, 3)
    if c is not None:
        c_all[:, :n] = c[:, :n]
    return offsets[-2]


def _run_in_views(cell, pre, weights, offsets, n, out, c_all, previous) -> int:
    """One run's steps on views of the packed arrays. Where a step's rows past n exist there, they are
    the next step's (its input share, read; its outputs, written, then overwritten by that step); the
    batch's last steps, which have none to spare, run on n rows. Returns the first packed row of the
    run's last step."""
    G, K, S, H = pre.shape
    views = {}  # rows -> (hw, its gate views, the cell state's running prefix)
    parts = (pre[:2], pre[2]) if cell == "gru" else (pre,)
    step, w_hh, rows_padded = STEPS[cell], weights.w_hh, padded(n)
    for start in offsets[:-1]:
        rows = rows_padded if start + rows_padded <= S else n
        if rows not in views:
            hw = np.empty((G, K, rows, H), pre.dtype)
            views[rows] = (hw, _gate_views(cell, hw, _b_hn(weights, rows)), None if c_all is None else c_all[:, :rows])
        hw, gates, c = views[rows]
        h_prev = np.zeros((K, rows, H), pre.dtype) if previous is None else out[:, previous:previous + rows]
        np.matmul(h_prev, w_hh, hw)  # G*K products (rows, H) x (H, H), one call
        here = slice(start, start + rows)
        step_pre = (parts[0][:, :, here], parts[1][:, here]) if cell == "gru" else parts[0][:, :, here]
        step(step_pre, h_prev, hw, out[:, here], gates, c)
        previous = start
    return previous


# --------------------------------------------------------------------------- one sequence, one direction
# `predict` on one text and a lone request in `serve`, for a unidirectional layer: every step is then one
# vector-matrix product and a few calls on contiguous (G*H,) and (H,) vectors, whose views are made once.
# (Two directions at batch 1 are faster on `recur`'s gate-major layout: measured 2.9 against 3.4-3.6 ms for
# a 230-step bidirectional GRU or LSTM layer, so they stay there.)


def recur_one(cell: str, x: np.ndarray, weights: LayerWeights) -> np.ndarray:
    """One sequence's inputs (S, D) through a unidirectional layer -> outputs (1, S, H): what
    `recur(cell, project([x], weights), weights, pack([S]))` gives."""
    flat = weights.flat
    pre = np.matmul(x, flat.w_ih)  # (S, G*H)
    pre += flat.bias
    out = np.empty((1, len(x), flat.w_hh.shape[0]), pre.dtype)
    with blas.single_threaded():
        ONE_STEPS[cell](pre, flat, out[0])
    return out


def _rnn_one(pre, flat, out):
    dot, add, tanh = np.dot, np.add, np.tanh
    w = flat.w_hh
    h_prev = np.zeros(out.shape[1], out.dtype)
    hw = np.empty_like(h_prev)
    for pre_t, h in zip(pre, out):
        dot(h_prev, w, hw)
        add(hw, pre_t, hw)
        tanh(hw, h)
        h_prev = h


def _lstm_one(pre, flat, out):
    # Nine calls a step. The halves are an array, not a scalar: on a (3H,) vector numpy's scalar path
    # costs 0.39 us a call against 0.22 us (measured at H = 128).
    dot, add, multiply, tanh = np.dot, np.add, np.multiply, np.tanh
    H, w = out.shape[1], flat.w_hh
    buffer = np.zeros(5 * H, out.dtype)  # o, i, f, g, then the cell state c
    hw, sigmoids, o, c = buffer[:4 * H], buffer[:3 * H], buffer[:H], buffer[4 * H:]
    i_f, g_c = buffer[H:3 * H], buffer[3 * H:]  # paired for one multiply: i * g, f * c
    halves = np.full(3 * H, 0.5, out.dtype)
    products = np.empty(2 * H, out.dtype)  # i * g, f * c
    i_g, f_c = products[:H], products[H:]
    tanh_c = np.empty(H, out.dtype)
    h_prev = np.zeros(H, out.dtype)
    for pre_t, h in zip(pre, out):
        dot(h_prev, w, hw)
        add(hw, pre_t, hw)
        tanh(hw, hw)                # o, i, f (halved pre-activations) and g
        multiply(sigmoids, halves, sigmoids)
        add(sigmoids, halves, sigmoids)
        multiply(i_f, g_c, products)
        add(i_g, f_c, c)            # c = f * c_prev + i * g
        tanh(c, tanh_c)             # h = o * tanh(c)
        multiply(o, tanh_c, h)
        h_prev = h


def _gru_one(pre, flat, out):
    dot, add, multiply, subtract, tanh = np.dot, np.add, np.multiply, np.subtract, np.tanh
    H, w, b_hn = out.shape[1], flat.w_hh, flat.b_hn
    hw = np.empty(3 * H, out.dtype)
    rz, r, z, n = hw[:2 * H], hw[:H], hw[H:2 * H], hw[2 * H:]
    halves = np.full(2 * H, 0.5, out.dtype)  # an array: numpy's scalar path costs more per call
    h_prev = np.zeros(H, out.dtype)
    for pre_rz, pre_n, h in zip(pre[:, :2 * H], pre[:, 2 * H:], out):
        dot(h_prev, w, hw)
        add(rz, pre_rz, rz)
        tanh(rz, rz)                # rz held halved pre-activations: r, z = sigmoid(.)
        multiply(rz, halves, rz)
        add(rz, halves, rz)
        add(n, b_hn, n)             # n = tanh(pre_n + r * (h W_hn^T + b_hn))
        multiply(n, r, n)
        add(n, pre_n, n)
        tanh(n, n)
        subtract(h_prev, n, h)      # h = n + z * (h_prev - n)
        multiply(h, z, h)
        add(h, n, h)
        h_prev = h


ONE_STEPS = {"rnn": _rnn_one, "lstm": _lstm_one, "gru": _gru_one}


# --------------------------------------------------------------------------- the model


def run_layer(cell: str, inputs: list[np.ndarray], weights: LayerWeights, packing: Packing) -> np.ndarray:
    """Each direction's packed inputs (S, D) -> outputs (K, S, H): `recur_one` for a single sequence
    through one direction, else the projection and the packed steps."""
    if len(packing.lengths) == 1 and len(inputs) == 1:
        return recur_one(cell, inputs[0], weights)
    return recur(cell, project(inputs, weights), weights, packing)


def prepare_layers(config: ModelConfig, params: dict, prefix: str = "") -> list[LayerWeights]:
    """Every recurrent layer's LayerWeights. Compute them once for weights that do not change (a loaded
    bundle) and pass them to `many_to_one_logits`: the reordering and transposing copies every matrix."""
    return [layer_weights(config.cell, params, f"{prefix}rnn.", layer, config.num_directions)
            for layer in range(config.num_layers)]


def encode(config: ModelConfig, params: dict, ids: np.ndarray, packing: Packing, prefix: str = "",
           layers: list[LayerWeights] | None = None, table=None) -> np.ndarray:
    """ids (N, T) -> the top layer's outputs (K, S, H), packed (direction k in its own step order).

    table: an `input_table.InputTable` of the first layer, for a batch (N > 1) of a model served or evaluated.
    """
    K = config.num_directions
    layers = layers if layers is not None else prepare_layers(config, params, prefix)
    token_ids = pack_ids(ids, packing)
    pre = table.lookup(token_ids, packing.reverse) if table is not None and len(packing.lengths) > 1 else None
    if pre is not None:
        out = recur(config.cell, pre, layers[0], packing)
    else:
        x = np.take(params[f"{prefix}embedding.weight"], token_ids, axis=0)  # (S, E)
    for layer, weights in enumerate(layers):
        if layer > 0 or pre is None:
            inputs = [x] if K == 1 else [x, np.take(x, packing.reverse, axis=0)]
            out = run_layer(config.cell, inputs, weights, packing)
        if layer + 1 < config.num_layers:  # the next layer reads both directions in forward step order: (S, K*H)
            x = out[0] if K == 1 else np.concatenate([out[0], np.take(out[1], packing.reverse, axis=0)], axis=1)
    return out


def pool(mode: str, outputs: np.ndarray, packing: Packing) -> np.ndarray:
    """Top outputs (K, S, H), packed -> features (N, F) in sorted order, as `layers.Pooling` computes them.

    "last": each direction's state after its last step (the forward one at t = length - 1, the reverse
    one at t = 0); "mean" / "max" / "mean_max" over each sequence's real steps (order does not matter, so
    the reverse direction is pooled in its own order).
    """
    def flat(a):  # (K, N, H) -> (N, K*H): forward features, then reverse
        return np.concatenate(list(a), axis=1)

    if mode == "last":
        return flat(outputs[:, packing.last])
    parts = []
    if mode in ("mean", "mean_max"):
        parts.append(flat(sum_over_steps(outputs, packing)) / packing.lengths[:, None].astype(outputs.dtype))
    if mode in ("max", "mean_max"):
        parts.append(flat(max_over_steps(outputs, packing)))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def many_to_one_logits(config: ModelConfig, params: dict, ids: np.ndarray, lengths: np.ndarray,
                       layers: list[LayerWeights] | None = None, table=None) -> np.ndarray:
    """ids (N, T) post-padded, lengths (N,) with 1 <= length <= T -> logits (N, O), in the batch's order.

    `layers`: `prepare_layers(config, params)` made once, for weights that stay as they are (serving);
    `table`: an `input_table.InputTable(params["embedding.weight"], layers[0])` kept with them.
    """
    ids, lengths = np.asarray(ids), np.asarray(lengths)
    if ids.ndim != 2 or lengths.shape != ids.shape[:1]:
        raise ValueError(f"ids must be (N, T) and lengths (N,); got {ids.shape} and {lengths.shape}")
    if lengths.size and (lengths.min() < 1 or lengths.max() > ids.shape[1]):
        raise ValueError(f"every length must be in 1..{ids.shape[1]} (the padded width); got {lengths.tolist()}")
    if not lengths.size:
        return np.zeros((0, params["head.bias"].shape[0]), params["head.bias"].dtype)
    packing = pack(lengths)
    features = pool(config.pooling, encode(config, params, ids, packing, layers=layers, table=table), packing)
    logits = features @ params["head.weight"].T + params["head.bias"]
    out = np.empty_like(logits)
    out[packing.order] = logits
    return out


def bag_of_words_logits(config: ModelConfig, params: dict, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The logits of a one_to_one model (`models.BagOfWords`) in evaluation mode: ids (N, T), lengths (N,)
    -> logits (N, O). Only the S real tokens' embeddings are read ((S, E), not the (N, T, E) grid) and
    summed per text with one `np.add.reduceat`."""
    ids, lengths = np.asarray(ids), np.asarray(lengths)
    if ids.ndim != 2 or lengths.shape != ids.shape[:1]:
        raise ValueError(f"ids must be (N, T) and lengths (N,); got {ids.shape} and {lengths.shape}")
    weight = params["embedding.weight"]
    real = token_mask(ids, lengths, config.padding_idx)
    counts = real.sum(axis=1)
    sums = np.zeros((len(ids), weight.shape[1]), weight.dtype)
    filled = counts > 0
    if filled.any():  # row-major: each text's tokens are one run of the flat ids
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[filled]
        sums[filled] = np.add.reduceat(np.take(weight, ids[real], axis=0), starts, axis=0)
    mean = sums / np.maximum(counts, 1)[:, None].astype(weight.dtype)
    a = np.tanh(mean @ params["dense.weight"].T + params["dense.bias"])
    return a @ params["head.weight"].T + params["head.bias"]

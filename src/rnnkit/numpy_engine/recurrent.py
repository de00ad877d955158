"""Recurrent layers: any cell of `cells` unrolled over time, with hand-written BPTT.

Key: T time, N batch, D input size, H hidden size, G gate blocks, K directions
(1 or 2), L layers. Inside the engine sequences are time-major (T, N, D), so
each step reads and writes contiguous (N, ·) slices.

Masks for post-padded batches: a sequence of length l has real steps t < l.
At a padded step its state is carried through unchanged (and its output
repeats the last real state), so the final state is each sequence's state at
its own last step, and nothing computed on padding reaches a real output.
The reverse direction of a bidirectional layer reads each sequence reversed
*within its own length* (padding stays at the end) and its outputs are put
back in the original order, as `rnnkit.torch_engine.recurrent` does.

Speed (measured in bench/numpy_engine.py): the layer works in chunks of
CHUNK steps. Before a chunk, one (CHUNK*N, D) x (D, G*H) matmul makes its
steps' input shares; backwards, after a chunk, three matmuls take its share of
the weight gradients and of dx. Each chunk's arrays are then still in cache
(one matmul over all T*N rows before or after the loop made the training step
~10% slower). The loop writes into buffers of a `Workspace` kept between
calls, through the cells' caches. The steps' small matmuls run on one BLAS
thread (`blas`). With two or more BLAS threads allowed (`--threads`), the
chunks' matmuls run on a helper thread beside the steps (`blas.Overlap`):
the next chunk's input share during this chunk's steps, and a chunk's weight
gradients during the steps of the chunk before it (two gradient buffers,
alternating); its dx is taken on the stepping thread, which balances the two
(an LSTM training step alone, 2 threads: 78 -> 64-67 ms). With one thread
allowed, everything runs in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.numpy_engine import blas
from rnnkit.numpy_engine.cells import CELLS, Workspace, step_caches
from rnnkit.numpy_engine.layers import Dropout, dropout_mask

PARAM_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
CHUNK = 16  # steps per chunk: its input share is computed just before them, its weight gradients just after


def step_mask(lengths: np.ndarray | None, T: int) -> np.ndarray | None:
    """active (T, N) bool: True where t < lengths[n]; None when there are no lengths."""
    if lengths is None:
        return None
    return np.arange(T)[:, None] < np.asarray(lengths)[None, :]


def reverse_within_lengths(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """x (T, N, ...) with each sequence's first lengths[n] steps reversed; padding stays put.

    The permutation is its own inverse, so it also maps gradients back.
    """
    if lengths is None:
        return x[::-1]
    T, N = x.shape[:2]
    t = np.arange(T)[:, None]
    last = np.asarray(lengths)[None, :] - 1
    index = np.where(t <= last, last - t, t)  # (T, N)
    return x[index, np.arange(N)[None, :]]


class Recurrent:
    """One direction of one layer: `cell` over a time-major sequence.

    Args:
        cell: "rnn" | "lstm" | "gru".
        w_ih (G*H, D), w_hh (G*H, H), b_ih (G*H,), b_hh (G*H,): the weights
            (held by reference: an optimizer updating them in place is seen here).
    After `backward`, `grads` holds the same four names. The (T, N, ...)
    buffers live in a `Workspace` reused by the next call: the outputs and
    final state are valid until the next forward.
    """

    def __init__(self, cell: str, w_ih, w_hh, b_ih, b_hh) -> None:
        self.cell = cell
        self.params = {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.workspace = Workspace()
        self._cache = None

    def forward(self, x: np.ndarray, lengths: np.ndarray | None = None, state: tuple | None = None):
        """x (T, N, D) -> outputs (T, N, H), final state (h,) or (h, c), each (N, H).

        state: initial state (tuple of (N, H)); None starts from zeros.
        The outputs and final state are views of the layer's workspace: valid until
        the next forward, and read by backward (never write into them).
        """
        p, step = self.params, CELLS[self.cell].step
        T, N, D = x.shape
        GH, H = p["weight_hh"].shape
        xw = self.workspace.get("xw", (T, N, GH), np.result_type(x, p["weight_ih"]))
        if self.cell == "gru":  # gru's b_hn sits inside r * (.), so b_hh stays in the step
            bias, b_hh = p["bias_ih"], p["bias_hh"]
        else:
            bias, b_hh = p["bias_ih"] + p["bias_hh"], None
        caches, states = step_caches(self.cell, xw, self.workspace)
        for k, buffer in enumerate(states):
            buffer[0] = 0.0 if state is None else state[k]
        active = step_mask(lengths, T)
        ragged = _ragged_steps(active)
        current = tuple(buffer[0] for buffer in states)
        # the same matrix laid out for h_prev @ w_hh.T (BLAS's fastest layout); the copy pays off over many
        # steps, not over the one step per call of generation (copying 2048 x 512 each character was 95% of it)
        w_hh = np.ascontiguousarray(p["weight_hh"].T).T if T >= CHUNK else p["weight_hh"]

        def project(start: int) -> None:  # a chunk's input share, x W_ih^T + bias
            stop = min(T, start + CHUNK)
            chunk = xw[start:stop].reshape(-1, GH)
            np.matmul(x[start:stop].reshape(-1, D), p["weight_ih"].T, out=chunk)
            chunk += bias

        # each chunk's input share just before its steps (still in cache); with two cores, the next
        # chunk's on the helper thread while this chunk's steps run (`blas.Overlap`)
        with blas.Overlap(enabled=T > CHUNK) as overlap:
            projected = overlap.run(project, 0)
            for start in range(0, T, CHUNK):
                projected.result()
                if start + CHUNK < T:
                    projected = overlap.run(project, start + CHUNK)
                with blas.single_threaded():  # a step's matmul is small: thread hand-offs cost more than they save
                    for t in range(start, min(T, start + CHUNK)):
                        new, _ = step(xw[t], current, w_hh, b_hh, caches[t])
                        if t in ragged:  # finished sequences keep their state
                            keep = ~active[t][:, None]
                            for s_new, s_old in zip(new, current):
                                np.copyto(s_new, s_old, where=keep)
                        current = new
        self._cache = (x, caches, states, active, ragged)
        return states[0][1:], current

    def step_states(self) -> tuple[np.ndarray, ...]:
        """Every step's state from the last forward: (h,) or, for lstm, (h, c), each (T, N, H), in this layer's
        own step order (a reverse direction's is reversed). Views of the workspace: copy what you keep
        (`rnnkit lab cells` reads an LSTM's c here)."""
        if self._cache is None:
            raise RuntimeError("step_states() reads the last forward; call forward first")
        return tuple(buffer[1:] for buffer in self._cache[2])

    def backward(self, doutputs: np.ndarray, dfinal: tuple | None = None, dh_steps: np.ndarray | None = None):
        """BPTT. doutputs (T, N, H), dfinal (gradient of the final state, or None)
        -> dx (T, N, D), dstate0 (gradient of the initial state, tuple of (N, H)); fills `grads`.

        dh_steps (T, N, H), if given, receives dL/dh_t for every step: the whole gradient reaching
        the hidden state after step t (its output's and the later steps'), as `rnnkit lab gradients` plots.

        Runs backwards in chunks of CHUNK steps: after each, the chunk's share of
        the weight gradients and of dx is taken while its pre-activation
        gradients (CHUNK, N, G*H) are still in cache, so they need no (T, ...) buffer.
        """
        x, caches, states, active, ragged = self._cache
        p, step_backward = self.params, CELLS[self.cell].step_backward
        T, N, D = x.shape
        GH, H = p["weight_hh"].shape
        C = min(T, CHUNK)
        dx = np.empty((T, N, D), x.dtype)
        for g in self.grads.values():
            g.fill(0.0)
        if dfinal is None:
            dstate = tuple(np.zeros((N, H), x.dtype) for _ in states)
        else:
            dstate = tuple(np.array(d, dtype=x.dtype) for d in dfinal)
        w_hh = p["weight_hh"]
        # with two cores a chunk's share is taken on the helper thread while the steps of the chunk before
        # it run (`blas.Overlap`), so the chunks alternate between two gradient buffers
        with blas.Overlap(enabled=T > CHUNK) as overlap:
            buffers = [self._gradient_buffers(str(b), (C, N, GH), x.dtype) for b in range(1 + overlap.parallel)]
            taken = []
            for i, stop in enumerate(range(T, 0, -C)):
                start = max(0, stop - C)
                if i >= len(buffers):
                    taken[i - len(buffers)].result()  # the chunk that used this buffer is accumulated
                dxw, dhw = (buffer[:stop - start] for buffer in buffers[i % len(buffers)])
                with blas.single_threaded():
                    for t in reversed(range(start, stop)):
                        ds = (dstate[0] + doutputs[t],) + dstate[1:]  # the output at t is the state at t
                        if dh_steps is not None:
                            dh_steps[t] = ds[0]
                        _, _, dprev = step_backward(ds, caches[t], w_hh, dxw[t - start], dhw[t - start])
                        if t in ragged:  # finished sequences: the gradient skips the cell
                            done = ~active[t]
                            dxw[t - start][done] = 0.0
                            dhw[t - start][done] = 0.0
                            for d_prev, d_now in zip(dprev, ds):
                                np.copyto(d_prev, d_now, where=done[:, None])
                        dstate = dprev
                # this chunk's dx here, its weight gradients on the helper: the steps alone would leave this
                # thread waiting for the helper's three products (backward 46 -> ~40 ms, LSTM step measured)
                rows = (stop - start) * N
                np.matmul(dxw.reshape(rows, GH), p["weight_ih"], out=dx[start:stop].reshape(rows, D))
                taken.append(overlap.run(self._accumulate, x[start:stop], states[0][start:stop], dxw, dhw))
        return dx, dstate

    def _gradient_buffers(self, name: str, shape: tuple, dtype) -> tuple[np.ndarray, np.ndarray]:
        """A chunk's pre-activation gradients dxw and dhw (C, N, G*H) (one array for rnn and lstm)."""
        dxw = self.workspace.get(f"dxw{name}", shape, dtype)
        return dxw, (self.workspace.get(f"dhw{name}", shape, dtype) if self.cell == "gru" else dxw)

    def _accumulate(self, x, h_prev, dxw, dhw) -> None:
        """One chunk's share of the weight gradients: dW_ih += dxw^T x, dW_hh += dhw^T h_prev, biases.
        (C, N, ...) each."""
        C, N, D = x.shape
        GH, H = self.params["weight_hh"].shape
        g, rows = self.grads, C * N
        flat = dxw.reshape(rows, GH)
        g["weight_ih"] += flat.T @ x.reshape(rows, D)
        g["bias_ih"] += flat.sum(axis=0)
        if dhw is not dxw:
            flat = dhw.reshape(rows, GH)
        g["weight_hh"] += flat.T @ h_prev.reshape(rows, H)
        g["bias_hh"] += flat.sum(axis=0)


def _ragged_steps(active: np.ndarray | None) -> set[int]:
    """Time steps at which some, but not all, sequences have ended."""
    if active is None:
        return set()
    return set(np.flatnonzero(~active.all(axis=1)).tolist())


class StackedRecurrent:
    """num_layers of (bi)directional `Recurrent`; layer L+1 reads layer L's outputs.

    Args:
        cell: "rnn" | "lstm" | "gru".
        params: name -> array holding ``{prefix}weight_ih_l{L}[_reverse]`` etc.
        num_layers, bidirectional: the stack's shape.
        dropout: drop probability on each layer's outputs except the last (training only).

    States use PyTorch's layout: h (L*K, N, H), or (h, c) for lstm, layer-major.
    """

    def __init__(self, cell: str, params: dict, prefix: str, num_layers: int, bidirectional: bool,
                 dropout: float = 0.0) -> None:
        self.cell, self.prefix = cell, prefix
        self.num_directions = 2 if bidirectional else 1
        self.layers = [[Recurrent(cell, *(params[_name(prefix, kind, layer, d)] for kind in PARAM_KINDS))
                        for d in range(self.num_directions)] for layer in range(num_layers)]
        self.dropouts = [Dropout(dropout) for _ in range(num_layers - 1)]
        self._lengths = None

    def named_gradients(self) -> dict[str, np.ndarray]:
        return {_name(self.prefix, kind, layer, d): direction.grads[kind]
                for layer, directions in enumerate(self.layers)
                for d, direction in enumerate(directions) for kind in PARAM_KINDS}

    def forward(self, x: np.ndarray, lengths=None, state=None, train: bool = False, rng=None):
        """x (T, N, D) time-major -> outputs (T, N, K*H), final state (L*K, N, H) or (h, c).

        The outputs may be a view of a layer's buffer (read-only by convention: backward reads it).
        """
        self._lengths = lengths
        finals = []
        for layer, directions in enumerate(self.layers):
            outputs = []
            for d, direction in enumerate(directions):
                s0 = _select_state(state, layer * self.num_directions + d)
                inputs = x if d == 0 else reverse_within_lengths(x, lengths)
                out, final = direction.forward(inputs, lengths, s0)
                outputs.append(out if d == 0 else reverse_within_lengths(out, lengths))
                finals.append(final)
            x = np.concatenate(outputs, axis=2) if len(outputs) > 1 else outputs[0]  # a view: never write into it
            if layer < len(self.layers) - 1:
                x = self.dropouts[layer].forward(x, train, rng)
        return x, _stack_states(finals, self.cell)

    def backward(self, doutputs: np.ndarray, dfinal=None):
        """doutputs (T, N, K*H), dfinal (like the final state, or None) -> dx (T, N, D), dstate0 (like state)."""
        lengths, K = self._lengths, self.num_directions
        dinitial = [None] * (len(self.layers) * K)
        dx = doutputs
        for layer in reversed(range(len(self.layers))):
            if layer < len(self.layers) - 1:
                dx = self.dropouts[layer].backward(dx)
            douts = np.split(dx, K, axis=2)
            dx = None
            for d, direction in enumerate(self.layers[layer]):
                index = layer * K + d
                dout = douts[d] if d == 0 else reverse_within_lengths(douts[d], lengths)
                dinput, dinitial[index] = direction.backward(np.ascontiguousarray(dout),
                                                             _select_state(dfinal, index))
                if d == 1:
                    dinput = reverse_within_lengths(dinput, lengths)
                dx = dinput if dx is None else dx + dinput
        return dx, _stack_states(dinitial, self.cell)


@dataclass(frozen=True)
class StepCache:
    """What `StackStepper.backward` needs from one step: each layer's input x (N, D_L), cell cache and dropout mask."""

    inputs: list
    caches: list
    masks: list


class StackStepper:
    """The unidirectional stack of `StackedRecurrent`, driven one time step per call.

    For decoders whose next input depends on their last output (generation,
    Bahdanau attention), which cannot precompute every step's input share.
    Same tensors as a StackedRecurrent with K = 1; states h (L, N, H) or (h, c).

        h_top, state, cache = stepper.step(x, state)            # x (N, D) -> h_top (N, H)
        dx, dstate_prev = stepper.backward(dh_top, dstate, cache)  # in reverse order of the steps

    `backward` adds into `grads` (name -> array): zero them with `zero_grad()`
    before a sequence's first backward step.
    """

    def __init__(self, cell: str, params: dict, prefix: str, num_layers: int, dropout: float = 0.0) -> None:
        self.cell, self.spec, self.dropout = cell, CELLS[cell], dropout
        self.names = [{kind: _name(prefix, kind, layer, 0) for kind in PARAM_KINDS} for layer in range(num_layers)]
        self.params = params
        self.grads = {name: np.zeros_like(params[name]) for names in self.names for name in names.values()}

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0.0)

    def step(self, x: np.ndarray, state, train: bool = False, rng: np.random.Generator | None = None):
        """x (N, D), state h (L, N, H) or (h, c) -> h_top (N, H), new state (same layout), StepCache."""
        states = state if isinstance(state, tuple) else (state,)
        new_states = tuple(np.empty_like(s) for s in states)
        cache = StepCache([], [], [])
        for layer, names in enumerate(self.names):
            p = {kind: self.params[name] for kind, name in names.items()}
            if layer > 0 and train and self.dropout:  # between layers, as StackedRecurrent's Dropout
                mask = dropout_mask(self.dropout, x, rng)
                x = x * mask
                cache.masks.append(mask)
            xw = x @ p["weight_ih"].T + p["bias_ih"]
            new, step_cache = self.spec.step(xw, tuple(s[layer] for s in states), p["weight_hh"], p["bias_hh"])
            cache.inputs.append(x)
            cache.caches.append(step_cache)
            for buffer, value in zip(new_states, new):
                buffer[layer] = value
            x = new[0]
        return x, (new_states if isinstance(state, tuple) else new_states[0]), cache

    def backward(self, dh_top: np.ndarray, dstate, cache: StepCache):
        """dh_top (N, H) into this step's top output, dstate (like state, or None) into its new state
        -> dx (N, D), dstate_prev (like state); adds the weight gradients into `grads`."""
        template = cache.caches[0]
        N, H = template.h_prev.shape
        n_states = len(self.spec.state_names)
        if dstate is None:
            dstates = tuple(np.zeros((len(self.names), N, H), dh_top.dtype) for _ in range(n_states))
        else:
            dstates = dstate if isinstance(dstate, tuple) else (dstate,)
        dprev_states = tuple(np.empty_like(d) for d in dstates)
        dx = dh_top
        for layer in reversed(range(len(self.names))):
            names = self.names[layer]
            w_ih, w_hh = self.params[names["weight_ih"]], self.params[names["weight_hh"]]
            ds = (dstates[0][layer] + dx,) + tuple(d[layer] for d in dstates[1:])
            step_cache = cache.caches[layer]
            dxw, dhw, dprev = self.spec.step_backward(ds, step_cache, w_hh)
            self.grads[names["weight_ih"]] += dxw.T @ cache.inputs[layer]
            self.grads[names["weight_hh"]] += dhw.T @ step_cache.h_prev
            self.grads[names["bias_ih"]] += dxw.sum(axis=0)
            self.grads[names["bias_hh"]] += dhw.sum(axis=0)
            for buffer, value in zip(dprev_states, dprev):
                buffer[layer] = value
            dx = dxw @ w_ih
            if layer > 0 and cache.masks:
                dx = dx * cache.masks[layer - 1]
        return dx, (dprev_states if isinstance(dstate, tuple) or n_states > 1 else dprev_states[0])


def _name(prefix: str, kind: str, layer: int, direction: int) -> str:
    return f"{prefix}{kind}_l{layer}{'_reverse' if direction else ''}"


def _select_state(state, index: int):
    """One layer-direction's state tuple from the stacked layout (or None)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s[index] for s in state)
    return (state[index],)


def _stack_states(finals: list[tuple], cell: str):
    """Per layer-direction tuples -> h (L*K, N, H), or (h, c) for lstm."""
    stacked = tuple(np.stack(parts) for parts in zip(*finals))
    return stacked if cell == "lstm" else stacked[0]

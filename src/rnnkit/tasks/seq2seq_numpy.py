"""Encoder-decoder inference in numpy alone (no torch): the light runtime for `rnnkit translate`.

Runs exactly the model of `rnnkit.torch_engine.seq2seq` (same tensors, names
from `rnnkit.params`, same semantics; tests hold the two engines equal to
1e-5) as the three functions `rnnkit.decoding` needs.

Key: x input (N, D), h / c hidden and cell state (N, H), W_ih (G*H, D),
W_hh (G*H, H), gate order i|f|g|o (lstm) and r|z|n (gru), as in PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.config import ModelConfig

SUPPORTED_ATTENTION = ("none", "bahdanau", "luong")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow warnings


def cell_step(cell: str, gx: np.ndarray, h: np.ndarray, c: np.ndarray | None, w_hh: np.ndarray,
              b_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """One step of a cell given gx = x W_ih^T + b_ih (N, G*H): returns h, c (c is None unless lstm)."""
    gh = h @ w_hh.T + b_hh
    if cell == "rnn":
        return np.tanh(gx + gh), None
    if cell == "gru":
        xr, xz, xn = np.split(gx, 3, axis=1)
        hr, hz, hn = np.split(gh, 3, axis=1)
        r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
        n = np.tanh(xn + r * hn)
        return (1.0 - z) * n + z * h, None
    i, f, g, o = np.split(gx + gh, 4, axis=1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def reverse_within_lengths(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Reverse x (N, T, F) along time inside each sequence's first lengths[n] steps; padding stays put."""
    t = np.arange(x.shape[1])[None, :]
    last = lengths[:, None] - 1
    index = np.where(t <= last, last - t, t)
    return np.take_along_axis(x, index[:, :, None], axis=1)


@dataclass
class State:
    """Decoding state: h (L, B, Hd), c (L, B, Hd) or None, and the encoded source rows."""

    h: np.ndarray
    c: np.ndarray | None
    outputs: np.ndarray  # (B, S, Hd)
    mask: np.ndarray     # (B, S) True at real steps
    keys: np.ndarray | None  # (B, S, A)

    def select(self, rows: np.ndarray) -> "State":
        return State(self.h[:, rows], None if self.c is None else self.c[:, rows], self.outputs[rows],
                     self.mask[rows], None if self.keys is None else self.keys[rows])


class NumpyBackend:
    """start / step / select of `rnnkit.decoding` for an encoder_decoder config and its tensors."""

    def __init__(self, config: ModelConfig, tensors: dict[str, np.ndarray]) -> None:
        self.c = config
        self.t = {name: np.asarray(value, dtype=np.float32) for name, value in tensors.items()}

    # ------------------------------------------------------------------ encoder

    def _weights(self, prefix: str, suffix: str) -> tuple[np.ndarray, ...]:
        """W_ih, W_hh, b_ih, b_hh of one layer-direction, e.g. prefix "encoder.rnn.", suffix "_l0_reverse"."""
        return tuple(self.t[f"{prefix}{kind}{suffix}"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _run(self, weights: tuple[np.ndarray, ...], x: np.ndarray, lengths: np.ndarray, reverse: bool):
        """One layer-direction over x (N, T, D) -> outputs (N, T, H) (zeros at padding), final h, c."""
        w_ih, w_hh, b_ih, b_hh = weights
        if reverse:
            x = reverse_within_lengths(x, lengths)
        gx = x @ w_ih.T + b_ih  # (N, T, G*H): the input part of every step at once
        n, steps = x.shape[:2]
        h = np.zeros((n, w_hh.shape[1]), dtype=np.float32)
        c = np.zeros_like(h) if self.c.cell == "lstm" else None
        outputs = np.zeros((n, steps, h.shape[1]), dtype=np.float32)
        for step in range(steps):
            h_new, c_new = cell_step(self.c.cell, gx[:, step], h, c, w_hh, b_hh)
            real = (step < lengths)[:, None]  # a finished sequence keeps its final state
            h = np.where(real, h_new, h)
            c = None if c is None else np.where(real, c_new, c)
            outputs[:, step] = np.where(real, h_new, 0.0)
        if reverse:
            outputs = reverse_within_lengths(outputs, lengths)
        return outputs, h, c

    def start(self, ids: np.ndarray, lengths: np.ndarray) -> State:
        """Encode ids (N, S) post-padded with lengths (N,) -> the initial decoding state."""
        cfg, lengths = self.c, np.asarray(lengths)
        x = self.t["encoder.embedding.weight"][ids]
        hs, cs = [], []
        for layer in range(cfg.num_layers):
            outs, finals_h, finals_c = [], [], []
            for suffix in ("", "_reverse")[:cfg.num_directions]:
                out, h, c = self._run(self._weights("encoder.rnn.", f"_l{layer}{suffix}"), x, lengths,
                                      reverse=bool(suffix))
                outs.append(out)
                finals_h.append(h)
                finals_c.append(c)
            x = np.concatenate(outs, axis=-1)
            hs.append(np.concatenate(finals_h, axis=-1))  # directions concatenated: the decoder's (N, Hd)
            cs.append(np.concatenate(finals_c, axis=-1) if cfg.cell == "lstm" else None)
        mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]
        keys = None
        if cfg.attention == "bahdanau":
            keys = x @ self.t["decoder.attention.key.weight"].T + self.t["decoder.attention.key.bias"]
        elif cfg.attention == "luong":
            keys = x @ self.t["decoder.attention.weight"].T
        return State(np.stack(hs), np.stack(cs) if cfg.cell == "lstm" else None, x, mask, keys)

    # ------------------------------------------------------------------ decoder

    def _attend(self, scores: np.ndarray, state: State) -> tuple[np.ndarray, np.ndarray]:
        """scores (B, S) -> context (B, Hd), weights (B, S) (softmax over real source steps)."""
        scores = np.where(state.mask, scores, -np.inf)
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("bs,bsh->bh", weights, state.outputs), weights

    def step(self, tokens: np.ndarray, state: State):
        """tokens (B,) -> log-probabilities (B, V_t), next state, attention weights (B, S) or None."""
        cfg, t = self.c, self.t
        x = t["decoder.embedding.weight"][tokens]
        weights = None
        if cfg.attention == "bahdanau":
            query = state.h[-1] @ t["decoder.attention.query.weight"].T  # s_{t-1}: top layer
            energy = np.tanh(state.keys + query[:, None, :]) @ t["decoder.attention.energy.weight"][0]
            context, weights = self._attend(energy, state)
            x = np.concatenate([x, context], axis=1)
        hs, cs = [], []
        for layer in range(cfg.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._weights("decoder.rnn.", f"_l{layer}")
            h, c = cell_step(cfg.cell, x @ w_ih.T + b_ih, state.h[layer],
                             None if state.c is None else state.c[layer], w_hh, b_hh)
            hs.append(h)
            cs.append(c)
            x = h
        if cfg.attention == "bahdanau":
            x = np.concatenate([x, context], axis=1)
        elif cfg.attention == "luong":
            context, weights = self._attend(np.einsum("bh,bsh->bs", x, state.keys), state)
            x = np.tanh(np.concatenate([context, x], axis=1) @ t["decoder.attention.combine.weight"].T)
        logits = x @ t["decoder.head.weight"].T + t["decoder.head.bias"]
        logits = logits - logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        new = State(np.stack(hs), np.stack(cs) if cfg.cell == "lstm" else None, state.outputs, state.mask, state.keys)
        return logp, new, weights

    @staticmethod
    def select(state: State, rows: np.ndarray) -> State:
        return state.select(np.asarray(rows, dtype=np.int64))

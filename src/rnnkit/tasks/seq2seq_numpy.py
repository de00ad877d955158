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


# --------------------------------------------------------------------------- training (GRU, no attention)
#
# Hand-written BPTT for the model without attention, GRU cells, one layer (a
# bidirectional encoder is allowed). Batches come from `seq2seq.make_batches`,
# whose sources all share one length, so reversing a source is a flip.
# Checked against torch autograd in tests/test_seq2seq.py.

@dataclass(frozen=True)
class GRUCache:
    """What one GRU step keeps for backward: x (N, D), h_prev, r, z, n (N, H), hn = h_prev W_hn^T + b_hn."""

    x: np.ndarray
    h_prev: np.ndarray
    r: np.ndarray
    z: np.ndarray
    n: np.ndarray
    hn: np.ndarray


def gru_forward(x: np.ndarray, h: np.ndarray, w: tuple[np.ndarray, ...]) -> tuple[np.ndarray, list[GRUCache]]:
    """x (N, T, D), h0 (N, H), w = (W_ih, W_hh, b_ih, b_hh) -> outputs (N, T, H) and per-step caches."""
    w_ih, w_hh, b_ih, b_hh = w
    gx = x @ w_ih.T + b_ih
    outputs, caches = np.empty((x.shape[0], x.shape[1], h.shape[1]), dtype=x.dtype), []
    for t in range(x.shape[1]):
        xr, xz, xn = np.split(gx[:, t], 3, axis=1)
        hr, hz, hn = np.split(h @ w_hh.T + b_hh, 3, axis=1)
        r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
        n = np.tanh(xn + r * hn)
        caches.append(GRUCache(x[:, t], h, r, z, n, hn))
        h = (1.0 - z) * n + z * h
        outputs[:, t] = h
    return outputs, caches


def gru_backward(d_out: np.ndarray, dh: np.ndarray, caches: list[GRUCache], w: tuple[np.ndarray, ...]):
    """d_out (N, T, H) into the outputs, dh (N, H) into the last state -> dx (N, T, D), dh0 (N, H), grads of w."""
    w_ih, w_hh, _, _ = w
    grads = [np.zeros_like(p) for p in w]
    dx = np.empty((d_out.shape[0], d_out.shape[1], w_ih.shape[1]), dtype=d_out.dtype)
    for t in reversed(range(len(caches))):
        c = caches[t]
        dh = dh + d_out[:, t]
        dn, dz = dh * (1.0 - c.z), dh * (c.h_prev - c.n)
        dan = dn * (1.0 - c.n ** 2)
        dar = dan * c.hn * c.r * (1.0 - c.r)
        daz = dz * c.z * (1.0 - c.z)
        dgx = np.concatenate([dar, daz, dan], axis=1)   # (N, 3H), gate order r|z|n
        dgh = np.concatenate([dar, daz, dan * c.r], axis=1)
        grads[0] += dgx.T @ c.x
        grads[1] += dgh.T @ c.h_prev
        grads[2] += dgx.sum(0)
        grads[3] += dgh.sum(0)
        dx[:, t] = dgx @ w_ih
        dh = dh * c.z + dgh @ w_hh
    return dx, dh, grads


def loss_and_grads(config: ModelConfig, t: dict[str, np.ndarray], src: np.ndarray, tgt_in: np.ndarray,
                   tgt_out: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy over real target tokens and its gradient for every tensor.

    src (N, S) one length, tgt_in (N, T) = <s> y, tgt_out (N, T) = y </s> padded with 0.
    """
    if config.cell != "gru" or config.num_layers != 1 or config.attention != "none":
        raise ValueError("numpy training supports one-layer GRU models without attention")
    suffixes = ("_l0", "_l0_reverse")[:config.num_directions]
    enc_w = [tuple(t[f"encoder.rnn.{k}{s}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")) for s in suffixes]
    dec_w = tuple(t[f"decoder.rnn.{k}_l0"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    # forward: encoder directions -> concatenated final states -> decoder -> head
    x = t["encoder.embedding.weight"][src]
    zeros = np.zeros((src.shape[0], config.hidden_size), dtype=np.float32)
    runs = [gru_forward(x if d == 0 else x[:, ::-1], zeros, w) for d, w in enumerate(enc_w)]
    h0 = np.concatenate([out[:, -1] for out, _ in runs], axis=1)
    y = t["decoder.embedding.weight"][tgt_in]
    dec_out, dec_caches = gru_forward(y, h0, dec_w)
    logits = dec_out @ t["decoder.head.weight"].T + t["decoder.head.bias"]
    logits -= logits.max(-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(-1, keepdims=True)
    real = tgt_out != 0
    count = max(1, int(real.sum()))
    picked = np.take_along_axis(probs, tgt_out[..., None], -1)[..., 0]
    loss = float(-np.log(np.maximum(picked[real], 1e-30)).sum() / count)
    # backward, in reverse order
    g = {name: np.zeros_like(value) for name, value in t.items()}
    dlogits = probs
    np.put_along_axis(dlogits, tgt_out[..., None], np.take_along_axis(dlogits, tgt_out[..., None], -1) - 1.0, -1)
    dlogits *= real[..., None] / count
    g["decoder.head.weight"] = np.einsum("ntv,nth->vh", dlogits, dec_out)
    g["decoder.head.bias"] = dlogits.sum((0, 1))
    dy, dh0, grads = gru_backward(dlogits @ t["decoder.head.weight"], np.zeros_like(h0), dec_caches, dec_w)
    _store(g, "decoder.rnn.", "_l0", grads)
    np.add.at(g["decoder.embedding.weight"], tgt_in, dy)
    h = config.hidden_size
    for d, ((out, caches), w) in enumerate(zip(runs, enc_w)):
        dx, _, grads = gru_backward(np.zeros_like(out), dh0[:, d * h:(d + 1) * h], caches, w)
        _store(g, "encoder.rnn.", suffixes[d], grads)
        np.add.at(g["encoder.embedding.weight"], src, dx if d == 0 else dx[:, ::-1])
    g["encoder.embedding.weight"][config.padding_idx] = 0.0  # the padding row stays fixed, as in torch
    g["decoder.embedding.weight"][config.padding_idx] = 0.0
    return loss, g


def _store(g: dict, prefix: str, suffix: str, grads: list[np.ndarray]) -> None:
    for kind, grad in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), grads):
        g[f"{prefix}{kind}{suffix}"] = grad


def init_tensors(config: ModelConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Initial weights like torch.nn: embeddings N(0, 1) (padding row 0), the rest U(-1/sqrt(H), 1/sqrt(H))."""
    from rnnkit.params import parameter_shapes

    tensors = {}
    for name, shape in parameter_shapes(config).items():
        if name.endswith("embedding.weight"):
            value = rng.standard_normal(shape)
            value[config.padding_idx] = 0.0
        else:
            bound = 1.0 / np.sqrt(shape[1] if name.endswith("head.weight") else config.hidden_size * (
                config.num_directions if name.startswith("decoder.") else 1))
            value = rng.uniform(-bound, bound, size=shape)
        tensors[name] = value.astype(np.float32)
    return tensors


class Adam:
    """Adam with global-norm gradient clipping, over a dict of float32 arrays (updated in place)."""

    def __init__(self, params: dict[str, np.ndarray], lr: float, clip_norm: float = 5.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.clip_norm, self.betas, self.eps = params, lr, clip_norm, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.steps = 0

    def step(self, grads: dict[str, np.ndarray]) -> None:
        norm = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
        scale = min(1.0, self.clip_norm / (norm + 1e-6)) if self.clip_norm else 1.0
        self.steps += 1
        b1, b2 = self.betas
        for k, p in self.params.items():
            g = grads[k] * scale
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            m_hat = self.m[k] / (1 - b1 ** self.steps)
            v_hat = self.v[k] / (1 - b2 ** self.steps)
            p -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.dtype)

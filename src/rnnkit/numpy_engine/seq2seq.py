"""The encoder-decoder (sequence-to-sequence) model in numpy, forward and hand-written backward.

Shapes: N batch, S source steps, T target steps, E embedding size, H encoder
hidden size per direction, K directions, L layers, Hd = K*H decoder hidden
size, V_t target vocabulary. Exactly the model of
`rnnkit.torch_engine.seq2seq` (same tensors, names from `rnnkit.params`; tests
hold the two equal), built from this engine's parts:

    source ids (N, S) -> Embedding -> dropout -> StackedRecurrent (masks; (bi)directional)
        -> memory: outputs (N, S, Hd) [+ attention keys]; final states (L*K, N, H)
        -> bridge: each layer's directions concatenated -> decoder state (L, N, Hd)
    target ids (N, T) = <s> y_1 .. -> Embedding -> dropout -> decoder stack -> [attention] -> dropout -> head
        -> logits (N, T, V_t)

Attention (`rnnkit.numpy_engine.attention`): "none"; "luong", applied to
every decoder output after the recurrent stack, so with teacher forcing the
whole target runs through one `StackedRecurrent` (fast); "bahdanau", whose
context feeds the decoder's input, so the decoder runs step by step
(`StackStepper`), as it does for every kind when teacher forcing is below 1
(the model's own predictions are fed back). Inference (`encode`,
`decode_step`) always steps.

Training: `forward(src, lengths, tgt_in, train, rng, teacher_forcing)` keeps
what `backward` needs; `backward(dlogits)` returns the gradient of every tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.config import ModelConfig
from rnnkit.numpy_engine import attention as att
from rnnkit.numpy_engine.layers import Dense, Dropout, Embedding, dropout_mask
from rnnkit.numpy_engine.recurrent import StackedRecurrent, StackStepper


class EncoderDecoder:
    """The encoder_decoder architecture of `ModelConfig`; parameters held by reference in `params`."""

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray]) -> None:
        if config.architecture != "encoder_decoder":
            raise ValueError(f"EncoderDecoder needs architecture encoder_decoder; got {config.architecture!r}")
        c = self.config = config
        self.params = params
        self.source_embedding = Embedding(params["encoder.embedding.weight"], c.padding_idx)
        self.encoder = StackedRecurrent(c.cell, params, "encoder.rnn.", c.num_layers, c.bidirectional, c.dropout)
        self.target_embedding = Embedding(params["decoder.embedding.weight"], c.padding_idx)
        self.decoder = StackedRecurrent(c.cell, params, "decoder.rnn.", c.num_layers, False, c.dropout)
        self.stepper = StackStepper(c.cell, params, "decoder.rnn.", c.num_layers, c.dropout)
        self.head = Dense(params["decoder.head.weight"], params["decoder.head.bias"])
        self.dropouts = {part: Dropout(c.dropout) for part in ("source", "target", "head")}
        self._cache = None

    # ------------------------------------------------------------------ encoder

    def encode(self, src: np.ndarray, lengths: np.ndarray, train: bool = False, rng=None):
        """src (N, S) post-padded, lengths (N,) -> (Memory, initial decoder state (L, N, Hd) or (h, c))."""
        src, lengths = np.asarray(src), np.asarray(lengths)
        x = self.dropouts["source"].forward(self.source_embedding.forward(src), train, rng)  # (S, N, E)
        uniform = bool(np.all(lengths == src.shape[1]))
        outputs, final = self.encoder.forward(x, None if uniform else lengths, None, train, rng)
        outputs = np.ascontiguousarray(outputs.transpose(1, 0, 2))  # (N, S, Hd)
        mask = np.arange(src.shape[1])[None, :] < lengths[:, None]
        return att.Memory(outputs, mask, self._keys(outputs)), self._bridge(final)

    def _keys(self, outputs: np.ndarray) -> np.ndarray | None:
        """Attention keys (N, S, A) of the encoder outputs (N, S, Hd), or None without attention."""
        p = self.params
        if self.config.attention == "bahdanau":
            return outputs @ p["decoder.attention.key.weight"].T + p["decoder.attention.key.bias"]
        if self.config.attention == "luong":
            return outputs @ p["decoder.attention.weight"].T
        return None

    def _keys_backward(self, dkeys: np.ndarray, outputs: np.ndarray, grads: dict) -> np.ndarray:
        """dkeys (N, S, A) -> d outputs (N, S, Hd); the key weights' gradients go into grads."""
        p, flat = self.params, dkeys.reshape(-1, dkeys.shape[-1])
        name = "decoder.attention.key.weight" if self.config.attention == "bahdanau" else "decoder.attention.weight"
        grads[name] = flat.T @ outputs.reshape(-1, outputs.shape[-1])
        if self.config.attention == "bahdanau":
            grads["decoder.attention.key.bias"] = flat.sum(axis=0)
        return dkeys @ p[name]

    def _bridge(self, final):
        """Encoder final states (L*K, N, H), layer-major -> decoder initial states (L, N, K*H)."""
        if isinstance(final, tuple):
            return tuple(self._bridge(f) for f in final)
        L, K = self.config.num_layers, self.config.num_directions
        _, N, H = final.shape
        return final.reshape(L, K, N, H).transpose(0, 2, 1, 3).reshape(L, N, K * H)

    def _bridge_backward(self, dstate):
        """The inverse permutation: d decoder initial state (L, N, K*H) -> d encoder final state (L*K, N, H)."""
        if isinstance(dstate, tuple):
            return tuple(self._bridge_backward(d) for d in dstate)
        L, K = self.config.num_layers, self.config.num_directions
        _, N, KH = dstate.shape
        return dstate.reshape(L, N, K, KH // K).transpose(0, 2, 1, 3).reshape(L * K, N, KH // K)

    # ------------------------------------------------------------------ inference

    def decode_step(self, tokens: np.ndarray, state, memory: att.Memory):
        """tokens (N,) -> logits (N, V_t), next state, attention weights (N, S) or None."""
        p, kind = self.params, self.config.attention
        x = p["decoder.embedding.weight"][tokens]  # (N, E)
        weights = None
        if kind == "bahdanau":
            context, weights, _ = att.additive_attention(_top(state), memory, p["decoder.attention.query.weight"],
                                                         p["decoder.attention.energy.weight"])
            x = np.concatenate([x, context], axis=1)
        out, state, _ = self.stepper.step(x, state)
        if kind == "bahdanau":
            out = np.concatenate([out, context], axis=1)
        elif kind == "luong":
            out, weights, _ = att.multiplicative_attention(out[:, None, :], memory, p["decoder.attention.combine.weight"])
            out, weights = out[:, 0], weights[:, 0]
        return self.head.forward(out), state, weights

    # ------------------------------------------------------------------ training

    def forward(self, src: np.ndarray, src_lengths: np.ndarray, tgt_in: np.ndarray, train: bool = False,
                rng: np.random.Generator | None = None, teacher_forcing: float = 1.0) -> np.ndarray:
        """Training pass: src (N, S), src_lengths (N,), tgt_in (N, T) = <s> y_1 .. -> logits (N, T, V_t).

        With teacher_forcing < 1, each step after the first feeds the model's own
        previous prediction (argmax) instead of the true token with probability
        1 - teacher_forcing. `rng` drives that choice and dropout. Keeps what
        `backward` needs.
        """
        tgt_in = np.asarray(tgt_in)
        memory, state = self.encode(src, src_lengths, train, rng)
        if teacher_forcing < 1.0 or self.config.attention == "bahdanau":
            if teacher_forcing < 1.0 and rng is None:
                raise ValueError("teacher forcing below 1 needs a numpy Generator (pass rng=)")
            logits, steps = self._decode_stepwise(memory, state, tgt_in, teacher_forcing, train, rng)
            self._cache = (memory, state, steps, None)
            return logits.transpose(1, 0, 2)
        x = self.dropouts["target"].forward(self.target_embedding.forward(tgt_in), train, rng)  # (T, N, E)
        out, _ = self.decoder.forward(x, None, state, train, rng)  # (T, N, Hd), one fused run over T
        luong = None
        if self.config.attention == "luong":
            attentional, _, luong = att.multiplicative_attention(
                out.transpose(1, 0, 2), memory, self.params["decoder.attention.combine.weight"])
            out = attentional.transpose(1, 0, 2)
        logits = self.head.forward(self.dropouts["head"].forward(out, train, rng))  # (T, N, V_t)
        self._cache = (memory, state, None, luong)
        return logits.transpose(1, 0, 2)

    def _decode_stepwise(self, memory: att.Memory, state, tgt_in: np.ndarray, teacher_forcing: float,
                         train: bool, rng) -> tuple[np.ndarray, list[DecoderStep]]:
        """One step at a time, as decode_step, keeping each step's record: -> logits (T, N, V_t), records.

        Needed when the next step's input depends on this step's output: Bahdanau's
        context, or the model's own prediction (teacher forcing < 1).
        """
        p, kind, drop = self.params, self.config.attention, self.config.dropout if train else 0.0
        tokens, logits, steps = tgt_in[:, 0], [], []
        for t in range(tgt_in.shape[1]):
            step = DecoderStep(tokens, dropout_mask(drop, p["decoder.embedding.weight"][tokens], rng))
            x = p["decoder.embedding.weight"][tokens] * step.input_mask
            if kind == "bahdanau":
                context, _, step.attention = att.additive_attention(
                    _top(state), memory, p["decoder.attention.query.weight"], p["decoder.attention.energy.weight"])
                x = np.concatenate([x, context], axis=1)
            out, state, step.rnn = self.stepper.step(x, state, train, rng)
            if kind == "bahdanau":
                out = np.concatenate([out, context], axis=1)
            elif kind == "luong":
                out, _, step.attention = att.multiplicative_attention(out[:, None, :], memory,
                                                                      p["decoder.attention.combine.weight"])
                out = out[:, 0]
            step.head_mask = dropout_mask(drop, out, rng)
            step.head_input = out * step.head_mask
            logits.append(step.head_input @ p["decoder.head.weight"].T + p["decoder.head.bias"])
            steps.append(step)
            if t + 1 < tgt_in.shape[1]:
                tokens = tgt_in[:, t + 1]
                if teacher_forcing < 1.0:
                    own = rng.random(len(tokens)) >= teacher_forcing
                    tokens = np.where(own, logits[-1].argmax(axis=1), tokens)
        return np.stack(logits), steps

    def backward(self, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        """dlogits (N, T, V_t) -> the gradient of every tensor (names of `rnnkit.params`)."""
        memory, state, steps, luong = self._cache
        p, grads = self.params, {}
        dlogits = np.ascontiguousarray(dlogits.transpose(1, 0, 2))  # (T, N, V_t)
        if steps is not None:
            doutputs, dkeys, dstate = self._stepwise_backward(dlogits, steps, memory, grads)
        else:
            dout = self.dropouts["head"].backward(self.head.backward(dlogits))
            grads["decoder.head.weight"], grads["decoder.head.bias"] = self.head.grads["weight"], self.head.grads["bias"]
            doutputs, dkeys = np.zeros_like(memory.outputs), None
            if luong is not None:
                dqueries, doutputs, dkeys, grads["decoder.attention.combine.weight"] = \
                    att.multiplicative_attention_backward(dout.transpose(1, 0, 2), luong,
                                                          p["decoder.attention.combine.weight"])
                dout = np.ascontiguousarray(dqueries.transpose(1, 0, 2))
            dx, dstate = self.decoder.backward(dout)
            grads.update(self.decoder.named_gradients())
            self.target_embedding.backward(self.dropouts["target"].backward(dx))
            grads["decoder.embedding.weight"] = self.target_embedding.grads["weight"]
        if dkeys is not None:
            doutputs = doutputs + self._keys_backward(dkeys, memory.outputs, grads)
        dsource, _ = self.encoder.backward(np.ascontiguousarray(doutputs.transpose(1, 0, 2)),
                                           self._bridge_backward(dstate))
        self.source_embedding.backward(self.dropouts["source"].backward(dsource))
        grads["encoder.embedding.weight"] = self.source_embedding.grads["weight"]
        grads.update(self.encoder.named_gradients())
        return {name: grads[name] for name in p}

    def _stepwise_backward(self, dlogits: np.ndarray, steps: list[DecoderStep], memory: att.Memory, grads: dict):
        """BPTT through `_decode_stepwise`. dlogits (T, N, V_t) -> doutputs (N, S, Hd), dkeys, dstate0;
        the decoder's gradients go into grads."""
        p, kind, Hd = self.params, self.config.attention, memory.outputs.shape[-1]
        g = {name: np.zeros_like(p[name]) for name in p if name.startswith(("decoder.attention.", "decoder.head.",
                                                                             "decoder.embedding."))}
        doutputs = np.zeros_like(memory.outputs)
        dkeys = None if memory.keys is None else np.zeros_like(memory.keys)
        self.stepper.zero_grad()
        E, dstate = p["decoder.embedding.weight"].shape[1], None
        for t in reversed(range(len(steps))):
            step, dz = steps[t], dlogits[t]
            g["decoder.head.weight"] += dz.T @ step.head_input
            g["decoder.head.bias"] += dz.sum(axis=0)
            dout = (dz @ p["decoder.head.weight"]) * step.head_mask
            if kind == "luong":
                dq, d_out, d_keys, d_wc = att.multiplicative_attention_backward(
                    dout[:, None, :], step.attention, p["decoder.attention.combine.weight"])
                dout, doutputs, dkeys = dq[:, 0], doutputs + d_out, dkeys + d_keys
                g["decoder.attention.combine.weight"] += d_wc
            dinput, dstate = self.stepper.backward(dout[:, :Hd], dstate, step.rnn)
            if kind == "bahdanau":
                dcontext = dout[:, Hd:] + dinput[:, E:]  # the context feeds the input and the head
                dquery, d_out, d_keys, d_wq, d_we = att.additive_attention_backward(
                    dcontext, step.attention, p["decoder.attention.query.weight"], p["decoder.attention.energy.weight"])
                doutputs, dkeys = doutputs + d_out, dkeys + d_keys
                g["decoder.attention.query.weight"] += d_wq
                g["decoder.attention.energy.weight"] += d_we
                _top(dstate)[...] += dquery  # the query was the previous top state
            np.add.at(g["decoder.embedding.weight"], step.tokens, dinput[:, :E] * step.input_mask)
        g["decoder.embedding.weight"][self.config.padding_idx] = 0.0  # as torch.nn.Embedding(padding_idx)
        grads.update(g)
        grads.update(self.stepper.grads)
        return doutputs, dkeys, dstate


@dataclass
class DecoderStep:
    """What `_stepwise_backward` needs from one decoder step: the input tokens (N,), dropout masks
    (or 1.0), the attention cache, the stack's StepCache, and the head's input (N, F) after dropout."""

    tokens: np.ndarray
    input_mask: np.ndarray | float
    attention: object = None
    rnn: object = None
    head_mask: np.ndarray | float = 1.0
    head_input: np.ndarray | None = None



def _top(state) -> np.ndarray:
    """The top layer's hidden state (N, Hd) of a decoder state (L, N, Hd) or (h, c) (a view)."""
    return (state[0] if isinstance(state, tuple) else state)[-1]


def select_state(state, rows: np.ndarray):
    """Rows (beams) of a decoder state (L, N, Hd) or (h, c)."""
    if isinstance(state, tuple):
        return tuple(s[:, rows] for s in state)
    return state[:, rows]

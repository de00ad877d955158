"""Encoder-decoder (sequence-to-sequence) model with optional attention, for the torch engine.

Shapes: N batch, S source steps, T target steps, E embedding, H encoder hidden
size per direction, K directions, Hd = K*H decoder hidden size (= encoder
output size), A attention size (= Hd), V_s / V_t source / target vocabularies.

    source ids (N, S) -> embedding (N, S, E) -> stacked (bi)directional encoder
        -> outputs (N, S, Hd) and final states; the decoder starts from the
           final state of each encoder layer, directions concatenated (L, N, Hd)
    target ids (N, T) = <s> y1 .. y_{T-1} -> embedding -> decoder RNN -> head -> logits (N, T, V_t)

Attention (``config.attention``):
- "bahdanau" (additive; Bahdanau et al. 2015): before each step, the previous
  top decoder state s_{t-1} scores every source step,
  ``e_j = v . tanh(W_q s_{t-1} + W_k h_j + b)``, the context
  ``c_t = sum_j softmax(e)_j h_j`` is fed with the token embedding, and the
  head reads ``[s_t; c_t]``.
- "luong" (multiplicative "general"; Luong et al. 2015): after each step,
  ``e_j = s_t . (W_a h_j)``, and the head reads ``tanh(W_c [c_t; s_t])``. The
  decoder RNN does not depend on the attention, so with full teacher forcing
  a whole target runs through one fused RNN call (fast on CPU).

Padding in the source is masked out of the attention; the encoder's final
states are exact for every length (packed sequences when lengths differ).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.torch_engine.recurrent import StackedRecurrent


@dataclass
class Memory:
    """The encoded source: outputs (N, S, Hd), mask (N, S) True at real steps, keys (N, S, A) or None."""

    outputs: torch.Tensor
    mask: torch.Tensor
    keys: torch.Tensor | None

    def select(self, rows: torch.Tensor) -> "Memory":
        return Memory(self.outputs[rows], self.mask[rows], None if self.keys is None else self.keys[rows])


class BahdanauAttention(nn.Module):
    """Additive attention: scores (N, S) = energy(tanh(query(s) + key(h)))."""

    def __init__(self, query_size: int, key_size: int, size: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_size, size, bias=False)
        self.key = nn.Linear(key_size, size)
        self.energy = nn.Linear(size, 1, bias=False)

    def keys(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.key(outputs)

    def forward(self, query: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, torch.Tensor]:
        """query (N, Hd) -> context (N, Hd), weights (N, S)."""
        scores = self.energy(torch.tanh(memory.keys + self.query(query).unsqueeze(1))).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~memory.mask, float("-inf")), dim=-1)
        return torch.bmm(weights.unsqueeze(1), memory.outputs).squeeze(1), weights


class LuongAttention(nn.Module):
    """Multiplicative "general" attention: scores (N, T, S) = s_t . (W_a h_j); output tanh(W_c [c; s])."""

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(query_size, key_size))  # W_a (Hd, Hd_enc)
        self.combine = nn.Linear(key_size + query_size, query_size, bias=False)
        nn.init.xavier_uniform_(self.weight)

    def keys(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs @ self.weight.t()  # (N, S, Hd)

    def forward(self, query: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, torch.Tensor]:
        """query (N, T, Hd) -> attentional states tanh(W_c [c; s]) (N, T, Hd), weights (N, T, S)."""
        scores = torch.bmm(query, memory.keys.transpose(1, 2))
        weights = torch.softmax(scores.masked_fill(~memory.mask.unsqueeze(1), float("-inf")), dim=-1)
        context = torch.bmm(weights, memory.outputs)
        return torch.tanh(self.combine(torch.cat([context, query], dim=-1))), weights


class Encoder(nn.Module):
    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=c.padding_idx)
        self.rnn = StackedRecurrent(c.cell, c.embedding_dim, c.hidden_size, c.num_layers, c.bidirectional, c.dropout)


class Decoder(nn.Module):
    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        hd = c.hidden_size * c.num_directions
        extra = hd if c.attention == "bahdanau" else 0
        self.embedding = nn.Embedding(c.target_vocab_size, c.embedding_dim, padding_idx=c.padding_idx)
        self.rnn = StackedRecurrent(c.cell, c.embedding_dim + extra, hd, c.num_layers, False, c.dropout)
        if c.attention == "bahdanau":
            self.attention = BahdanauAttention(hd, hd, hd)
        elif c.attention == "luong":
            self.attention = LuongAttention(hd, hd)
        else:
            self.attention = None
        self.head = nn.Linear(hd + extra, c.target_vocab_size)


class EncoderDecoder(nn.Module):
    """The encoder_decoder architecture of `ModelConfig` (tensor names: see `rnnkit.params`)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.architecture != "encoder_decoder":
            raise ValueError(f"EncoderDecoder needs architecture encoder_decoder; got {config.architecture!r}")
        self.config = config
        self.encoder, self.decoder = Encoder(config), Decoder(config)
        self.dropout = nn.Dropout(config.dropout)

    # ------------------------------------------------------------------ encoder

    def encode(self, src: torch.Tensor, lengths: torch.Tensor):
        """src (N, S) post-padded, lengths (N,) -> (Memory, initial decoder state (L, N, Hd) or (h, c))."""
        x = self.dropout(self.encoder.embedding(src))
        uniform = bool((lengths == src.shape[1]).all())
        outputs, final = self.encoder.rnn(x, None if uniform else lengths, packed=not uniform)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < lengths.to(src.device)[:, None]
        attention = self.decoder.attention
        keys = attention.keys(outputs) if attention is not None else None
        return Memory(outputs, mask, keys), self._bridge(final)

    def _bridge(self, final):
        """Encoder final states (L*K, N, H), layer-major -> decoder initial states (L, N, K*H)."""
        if isinstance(final, tuple):
            return tuple(self._bridge(f) for f in final)
        layers, k = self.config.num_layers, self.config.num_directions
        n, h = final.shape[1], final.shape[2]
        return final.view(layers, k, n, h).permute(0, 2, 1, 3).reshape(layers, n, k * h).contiguous()

    # ------------------------------------------------------------------ decoder

    def decode_step(self, tokens: torch.Tensor, state, memory: Memory):
        """tokens (N,) -> logits (N, V_t), next state, attention weights (N, S) or None."""
        d = self.decoder
        x = self.dropout(d.embedding(tokens)).unsqueeze(1)  # (N, 1, E)
        weights = None
        if self.config.attention == "bahdanau":
            top = (state[0] if isinstance(state, tuple) else state)[-1]  # s_{t-1}: top layer (N, Hd)
            context, weights = d.attention(top, memory)
            x = torch.cat([x, context.unsqueeze(1)], dim=-1)
        out, state = d.rnn(x, None, state)
        if self.config.attention == "bahdanau":
            out = torch.cat([out, context.unsqueeze(1)], dim=-1)
        elif self.config.attention == "luong":
            out, weights = d.attention(out, memory)
            weights = weights.squeeze(1)
        return d.head(self.dropout(out.squeeze(1))), state, weights

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
                teacher_forcing: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training pass: src (N, S), src_lengths (N,), tgt_in (N, T) = <s> y_1 .. -> logits (N, T, V_t).

        With teacher_forcing < 1, each step feeds the model's own previous
        prediction instead of the true token with probability 1 - teacher_forcing.
        """
        memory, state = self.encode(src, src_lengths)
        d = self.decoder
        if teacher_forcing >= 1.0 and self.config.attention != "bahdanau":
            out, _ = d.rnn(self.dropout(d.embedding(tgt_in)), None, state)  # one fused call over T
            if d.attention is not None:
                out, _ = d.attention(out, memory)
            return d.head(self.dropout(out))
        steps, tokens = [], tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            logits, state, _ = self.decode_step(tokens, state, memory)
            steps.append(logits)
            if t + 1 < tgt_in.shape[1]:
                tokens = tgt_in[:, t + 1]
                if teacher_forcing < 1.0:
                    own = torch.rand(tokens.shape, generator=generator, device=tokens.device) >= teacher_forcing
                    tokens = torch.where(own, logits.argmax(-1).detach(), tokens)
        return torch.stack(steps, dim=1)

    # ------------------------------------------------------------------ names

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        """Parameters under the bundle names of `rnnkit.params` (encoder.*, decoder.*)."""
        e, d = self.encoder, self.decoder
        named = {"encoder.embedding.weight": e.embedding.weight}
        named.update(e.rnn.shared_parameters("encoder.rnn."))
        named["decoder.embedding.weight"] = d.embedding.weight
        named.update(d.rnn.shared_parameters("decoder.rnn."))
        if d.attention is not None:
            named.update({f"decoder.attention.{k}": p for k, p in d.attention.named_parameters()})
        named.update({"decoder.head.weight": d.head.weight, "decoder.head.bias": d.head.bias})
        return named


def select_state(state, rows: torch.Tensor):
    """Rows (beams) of a decoder state (L, N, Hd) or (h, c)."""
    if isinstance(state, tuple):
        return tuple(s[:, rows] for s in state)
    return state[:, rows]

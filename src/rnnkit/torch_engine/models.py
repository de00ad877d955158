"""nn.Modules for each architecture of `ModelConfig`.

Semantics (the numpy engine implements the same, and tests hold them equal):
ids (N, T) post-padded -> embedding (N, T, E) -> dropout -> StackedRecurrent
-> (many-to-one) pooling over real steps -> dropout -> head -> logits (N, O);
(many-to-many) head at every step -> logits (N, T, O); (one-to-many) features
(N, D_in) -> tanh(bridge) -> initial state, then the many-to-many stack over the
tokens (teacher forcing; `generate` feeds back its own).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.params import check_one_to_many
from rnnkit.torch_engine.recurrent import StackedRecurrent
from rnnkit.torch_engine.seq2seq import EncoderDecoder


class _Sequence(nn.Module):
    """Embedding -> dropout -> stacked recurrent layers, shared by the sequence models."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.config = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=c.padding_idx)
        self.dropout = nn.Dropout(c.dropout)
        self.rnn = StackedRecurrent(c.cell, c.embedding_dim, c.hidden_size, c.num_layers, c.bidirectional, c.dropout)

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        named = {"embedding.weight": self.embedding.weight}
        named.update(self.rnn.shared_parameters("rnn."))
        named.update({"head.weight": self.head.weight, "head.bias": self.head.bias})
        return named


class ManyToOne(_Sequence):
    """A sequence in, one prediction out (sentiment): logits (N, O)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.head = nn.Linear(config.feature_size, config.output_size)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, packed: bool = False) -> torch.Tensor:
        """ids (N, T) post-padded, lengths (N,) -> logits (N, O)."""
        x = self.dropout(self.embedding(ids))
        outputs, _ = self.rnn(x, lengths, packed=packed)
        return self.head(self.dropout(pool(outputs, lengths, self.config)))


class ManyToMany(_Sequence):
    """One prediction per input step (character LM): logits (N, T, O) and the final state."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.head = nn.Linear(config.hidden_size * config.num_directions, config.output_size)

    def forward(self, ids: torch.Tensor, state=None):
        """ids (N, T) -> logits (N, T, O), final state (to carry into the next chunk)."""
        outputs, state = self.rnn(self.dropout(self.embedding(ids)), None, state)
        return self.head(self.dropout(outputs)), state


def pool(outputs: torch.Tensor, lengths: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Reduce outputs (N, T, K*H) over each sequence's real steps to features (N, F)."""
    lengths = lengths.to(outputs.device)
    if config.pooling == "last":
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
        final = outputs.gather(1, last).squeeze(1)  # forward direction: state at its own last step
        if config.bidirectional:
            h = config.hidden_size
            final = torch.cat([final[:, :h], outputs[:, 0, h:]], dim=-1)  # reverse: ends at t=0
        return final
    mask = (torch.arange(outputs.shape[1], device=outputs.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    mean = (outputs * mask).sum(1) / lengths[:, None].to(outputs.dtype)
    if config.pooling == "mean":
        return mean
    largest = outputs.masked_fill(~mask, float("-inf")).amax(1)
    return largest if config.pooling == "max" else torch.cat([mean, largest], dim=-1)


class OneToMany(_Sequence):
    """One input vector in, a sequence out: features (N, D_in) set the initial state, h0 = tanh(bridge(v)).

    Same function as `rnnkit.numpy_engine.models.OneToMany` (tensor names in `rnnkit.params`).
    """

    def __init__(self, config: ModelConfig) -> None:
        check_one_to_many(config)
        super().__init__(config)
        self.bridge = nn.Linear(config.input_size, config.num_layers * config.hidden_size)
        self.head = nn.Linear(config.hidden_size, config.output_size)

    def initial_state(self, features: torch.Tensor):
        """features (N, D_in) -> h0 (L, N, H), or (h0, c0 = 0) for lstm."""
        n, c = features.shape[0], self.config
        h0 = torch.tanh(self.bridge(features)).view(n, c.num_layers, c.hidden_size).transpose(0, 1).contiguous()
        return (h0, torch.zeros_like(h0)) if c.cell == "lstm" else h0

    def forward(self, features: torch.Tensor, tokens: torch.Tensor):
        """features (N, D_in), tokens (N, T) = <s> y_1 .. y_{T-1} -> logits (N, T, V), final state."""
        outputs, state = self.rnn(self.dropout(self.embedding(tokens)), None, self.initial_state(features))
        return self.head(self.dropout(outputs)), state

    @torch.no_grad()
    def generate(self, features: torch.Tensor, bos: int, steps: int) -> torch.Tensor:
        """Greedy: features (N, D_in) -> tokens (N, steps), each fed back as the next input."""
        state = self.initial_state(features)
        tokens = torch.full((features.shape[0], 1), bos, dtype=torch.long, device=features.device)
        out = []
        for _ in range(steps):
            outputs, state = self.rnn(self.embedding(tokens), None, state)
            tokens = self.head(outputs).argmax(-1)  # (N, 1)
            out.append(tokens)
        return torch.cat(out, dim=1)

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        return {"bridge.weight": self.bridge.weight, "bridge.bias": self.bridge.bias, **super().shared_parameters()}


_BUILDERS = {"many_to_one": ManyToOne, "many_to_many": ManyToMany, "one_to_many": OneToMany,
             "encoder_decoder": EncoderDecoder}


def build_model(config: ModelConfig) -> nn.Module:
    """The nn.Module for `config`, of any architecture (initialised like torch.nn does; seed torch first)."""
    return _BUILDERS[config.architecture](config)

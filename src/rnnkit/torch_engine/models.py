"""nn.Modules for each architecture of `ModelConfig`.

Semantics (the numpy engine implements the same, and tests hold them equal):
ids (N, T) post-padded -> embedding (N, T, E) -> dropout -> StackedRecurrent
-> (many-to-one) pooling over real steps -> dropout -> head -> logits (N, O);
(many-to-many) head at every step -> logits (N, T, O).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.config import ModelConfig
from rnnkit.torch_engine.recurrent import StackedRecurrent


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


_BUILDERS = {"many_to_one": ManyToOne, "many_to_many": ManyToMany}


def build_model(config: ModelConfig) -> nn.Module:
    """The nn.Module for `config` (initialised like torch.nn does; seed torch first)."""
    try:
        return _BUILDERS[config.architecture](config)
    except KeyError:
        raise NotImplementedError(f"the torch engine has no {config.architecture!r} model yet") from None

"""A stacked, optionally bidirectional recurrent block over post-padded batches.

Each layer and direction is its own one-layer ``nn.RNN``/``nn.LSTM``/``nn.GRU``
(fused kernels), so the reverse direction can run over each sequence reversed
*within its own length*: padding never enters a real state. Measured on CPU
(DESIGN.md), padded batches + masks beat ``pack_padded_sequence`` by 3.5-8.7x,
so the padded path is the default; ``packed=True`` runs packed sequences
instead (exact final states for every length; may win on GPU).

Shapes: N batch, T time, D input features, H hidden size, K = num_directions.
Tensor names exported (see `rnnkit.config`): ``weight_ih_l{L}[_reverse]`` etc.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
PARAM_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse x (N, T, F) along time inside each sequence's first lengths[n] steps; padding stays put."""
    n, t = x.shape[:2]
    steps = torch.arange(t, device=x.device).expand(n, t)
    last = (lengths.to(x.device) - 1).unsqueeze(1)
    index = torch.where(steps <= last, last - steps, steps)  # (N, T)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class StackedRecurrent(nn.Module):
    """num_layers of (bi)directional cells; layer L+1 reads layer L's outputs.

    Args:
        cell: "rnn" (tanh) | "lstm" | "gru".
        input_size: D, features per step of the input.
        hidden_size: H per direction.
        dropout: applied to each layer's outputs except the last (training only).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.num_directions = 2 if bidirectional else 1
        make = _MODULES[cell]
        self.layers = nn.ModuleList()
        for layer in range(num_layers):
            d_in = input_size if layer == 0 else hidden_size * self.num_directions
            self.layers.append(nn.ModuleList(make(d_in, hidden_size, batch_first=True)
                                             for _ in range(self.num_directions)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, state=None, packed: bool = False):
        """Run every layer.

        Args:
            x: (N, T, D) post-padded input.
            lengths: (N,) real steps per sequence (None: all T steps are real).
            state: initial state, as returned (None: zeros).
            packed: use packed sequences (exact final states for variable lengths).
        Returns:
            outputs (N, T, K*H) (zero-free garbage at padded steps: mask them), and the
            final state: h (L*K, N, H) ordered layer-major like nn.LSTM, or (h, c) for lstm.
            Without `packed`, final states are exact only when lengths is None.
        """
        finals = []
        for layer, directions in enumerate(self.layers):
            outputs = []
            for direction, module in enumerate(directions):
                h0 = _select_state(state, layer * self.num_directions + direction)
                inputs = x if direction == 0 else _reverse(x, lengths)
                out, final = self._run(module, inputs, lengths, h0, packed)
                if direction == 1:
                    out = _reverse(out, lengths)
                outputs.append(out)
                finals.append(final)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if layer < self.num_layers - 1:
                x = self.dropout(x)
        return x, _stack_states(finals, self.cell)

    @staticmethod
    def _run(module, inputs, lengths, h0, packed):
        if not packed or lengths is None:
            return module(inputs, h0)
        seq = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, final = module(seq, h0)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=inputs.shape[1])
        return out, final

    def shared_parameters(self, prefix: str = "rnn.") -> dict[str, nn.Parameter]:
        """Parameters under the PyTorch nn.LSTM names used by bundles: rnn.weight_ih_l0_reverse etc."""
        named = {}
        for layer, directions in enumerate(self.layers):
            for direction, module in enumerate(directions):
                suffix = "_reverse" if direction == 1 else ""
                for kind in PARAM_KINDS:
                    named[f"{prefix}{kind}_l{layer}{suffix}"] = getattr(module, f"{kind}_l0")
        return named


def _reverse(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    return x.flip(1) if lengths is None else reverse_within_lengths(x, lengths)


def _select_state(state, index: int):
    """One direction-layer's slice of a stacked initial state (or None)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s[index:index + 1].contiguous() for s in state)
    return state[index:index + 1].contiguous()


def _stack_states(finals: list, cell: str):
    if cell == "lstm":
        return torch.cat([h for h, _ in finals]), torch.cat([c for _, c in finals])
    return torch.cat(finals)

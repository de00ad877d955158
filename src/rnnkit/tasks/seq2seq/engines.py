"""A seq2seq model on either engine behind the decoding functions of `rnnkit.decoding` (numpy in, numpy out).

    start(ids (N, S), lengths (N,)) -> state
    step(tokens (B,), state) -> log-probabilities (B, V_t), next state, attention weights (B, S) or None
    select(state, rows) -> the state of those rows (beam search)
"""

from __future__ import annotations

import numpy as np

from rnnkit.bundle import Bundle
from rnnkit.errors import InputError
from rnnkit.optional import import_torch
from rnnkit.tasks.seq2seq.numpy_backend import NumpyBackend

class TorchBackend:
    """Decoding functions over a torch EncoderDecoder (numpy in, numpy out; see rnnkit.decoding)."""

    def __init__(self, module, device="cpu") -> None:
        self.module, self.device = module, device

    def start(self, ids: np.ndarray, lengths: np.ndarray):
        import torch

        with torch.no_grad():
            memory, state = self.module.encode(torch.from_numpy(ids).to(self.device), torch.from_numpy(lengths))
        return state, memory

    def step(self, tokens: np.ndarray, state):
        import torch

        rnn_state, memory = state
        with torch.no_grad():
            logits, rnn_state, weights = self.module.decode_step(torch.from_numpy(tokens).to(self.device),
                                                                 rnn_state, memory)
            logp = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return logp, (rnn_state, memory), None if weights is None else weights.cpu().numpy()

    @staticmethod
    def select(state, rows: np.ndarray):
        import torch

        from rnnkit.torch_engine.seq2seq import select_state

        rnn_state, memory = state
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        return select_state(rnn_state, index), memory.select(index)


def make_backend(bundle: Bundle, engine: str):
    """The decoding backend of `bundle` on `engine` ("numpy" or "torch")."""
    if engine == "torch":
        import_torch()
        from rnnkit.torch_engine import load_tensors
        from rnnkit.torch_engine.seq2seq import EncoderDecoder

        return TorchBackend(load_tensors(EncoderDecoder(bundle.config), bundle.tensors).eval())
    if engine == "numpy":
        return NumpyBackend(bundle.config, bundle.tensors)
    raise InputError(f"unknown engine {engine!r}; use numpy or torch")

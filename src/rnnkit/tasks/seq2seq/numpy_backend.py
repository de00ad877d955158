"""The numpy engine behind seq2seq translation and `--engine numpy` training (no torch).

Thin adapters over `rnnkit.numpy_engine.seq2seq.EncoderDecoder`, which holds
the model itself (same tensors and semantics as the torch engine; tests hold
the two equal):

    NumpyBackend      start / step / select, the decoding functions of `rnnkit.decoding`
    loss_and_grads    mean cross-entropy over the real target tokens and the gradient of every tensor
"""

from __future__ import annotations

import numpy as np

from rnnkit.config import ModelConfig
from rnnkit.data.pairs import PAD_ID
from rnnkit.numpy_engine.losses import cross_entropy_with_logits, log_softmax
from rnnkit.numpy_engine.seq2seq import EncoderDecoder, select_state

SUPPORTED_ATTENTION = ("none", "bahdanau", "luong")


class NumpyBackend:
    """Decoding functions over a numpy EncoderDecoder (see rnnkit.decoding).

    The decoding state is (decoder state (L, B, Hd) or (h, c), Memory).
    `tensors` are used as they are (by reference), so a model being trained can be decoded.
    """

    def __init__(self, config: ModelConfig, tensors: dict[str, np.ndarray]) -> None:
        self.model = EncoderDecoder(config, tensors)

    def start(self, ids: np.ndarray, lengths: np.ndarray):
        """Encode ids (N, S) post-padded with lengths (N,) -> the initial decoding state."""
        memory, state = self.model.encode(np.asarray(ids), np.asarray(lengths))
        return state, memory

    def step(self, tokens: np.ndarray, state):
        """tokens (B,) -> log-probabilities (B, V_t), next state, attention weights (B, S) or None."""
        rnn_state, memory = state
        logits, rnn_state, weights = self.model.decode_step(np.asarray(tokens), rnn_state, memory)
        return log_softmax(logits), (rnn_state, memory), weights

    @staticmethod
    def select(state, rows: np.ndarray):
        rnn_state, memory = state
        rows = np.asarray(rows, dtype=np.int64)
        return select_state(rnn_state, rows), memory.select(rows)


def loss_and_grads(config: ModelConfig, tensors: dict[str, np.ndarray], src: np.ndarray, tgt_in: np.ndarray,
                   tgt_out: np.ndarray, src_lengths: np.ndarray | None = None, model: EncoderDecoder | None = None,
                   train: bool = False, rng: np.random.Generator | None = None,
                   teacher_forcing: float = 1.0) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy over real target tokens and its gradient for every tensor.

    src (N, S) (lengths: src_lengths, or every source S long), tgt_in (N, T) = <s> y,
    tgt_out (N, T) = y </s> padded with PAD_ID (not counted). Pass `model` to reuse
    one built on `tensors`; `train` and `rng` turn dropout on; teacher_forcing < 1
    (with `rng`) feeds back the model's own predictions (see EncoderDecoder.forward).
    """
    model = model or EncoderDecoder(config, tensors)
    lengths = np.full(len(src), src.shape[1]) if src_lengths is None else src_lengths
    logits = model.forward(src, lengths, tgt_in, train=train, rng=rng, teacher_forcing=teacher_forcing)
    loss, dlogits = cross_entropy_with_logits(logits, tgt_out, ignore_index=PAD_ID)
    return loss, model.backward(dlogits)

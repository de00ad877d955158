"""The numpy encoder-decoder against the torch engine's: same tensors -> same logits and gradients (1e-5)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnkit.config import ModelConfig  # noqa: E402
from rnnkit.numpy_engine import build_model  # noqa: E402
from rnnkit.numpy_engine.seq2seq import EncoderDecoder  # noqa: E402
from rnnkit.torch_engine import export_tensors  # noqa: E402
from rnnkit.torch_engine.seq2seq import EncoderDecoder as TorchEncoderDecoder  # noqa: E402

TOL = 1e-5
CASES = list(itertools.product(("none", "bahdanau", "luong"), ("rnn", "lstm", "gru"), ((1, False), (2, True))))


def _config(attention, cell, layers, bidirectional, **kw):
    return ModelConfig(vocab_size=13, target_vocab_size=11, architecture="encoder_decoder", cell=cell,
                       embedding_dim=6, hidden_size=5, num_layers=layers, bidirectional=bidirectional,
                       attention=attention, **kw)


def _batch(seed=0, lengths=(6, 3, 1, 4), target_len=5):
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths)
    src = rng.integers(4, 13, (len(lengths), lengths.max()))
    src[np.arange(lengths.max())[None, :] >= lengths[:, None]] = 0  # post-padding
    return src, lengths, rng.integers(2, 11, (len(lengths), target_len))


@pytest.mark.parametrize("attention,cell,shape", CASES)
def test_encoder_decoder_equals_torch(attention, cell, shape):
    layers, bidirectional = shape
    config = _config(attention, cell, layers, bidirectional)
    torch.manual_seed(0)
    torch_model = TorchEncoderDecoder(config).eval()
    tensors = export_tensors(torch_model)
    model = build_model(config, {k: v.copy() for k, v in tensors.items()})
    assert isinstance(model, EncoderDecoder)
    src, lengths, tgt = _batch()
    logits_t = torch_model(torch.from_numpy(src), torch.from_numpy(lengths), torch.from_numpy(tgt))
    logits = model.forward(src, lengths, tgt)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, logits_t.detach().numpy(), atol=TOL, rtol=0)
    upstream = np.random.default_rng(2).standard_normal(logits.shape).astype(np.float32)
    (logits_t * torch.from_numpy(upstream)).sum().backward()
    grads = model.backward(upstream)
    expected = torch_model.shared_parameters()
    assert grads.keys() == expected.keys()
    for name, param in expected.items():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), atol=TOL, rtol=0, err_msg=name)


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong"])
def test_decode_steps_equal_the_teacher_forced_pass(attention):
    """Stepping the decoder on the true tokens gives the training pass's logits (inference path = training path)."""
    config = _config(attention, "lstm", 2, True)
    model = build_model(config, rng=np.random.default_rng(3))
    src, lengths, tgt = _batch(seed=4)
    logits = model.forward(src, lengths, tgt)
    memory, state = model.encode(src, lengths)
    for t in range(tgt.shape[1]):
        step_logits, state, weights = model.decode_step(tgt[:, t], state, memory)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5, rtol=0)
        if attention != "none":
            np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
            assert np.all(weights[2, 1:] == 0.0)  # the length-1 source attends to its one real step only


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong"])
def test_feeding_back_own_predictions_equals_torch(attention):
    """teacher_forcing=0: every step after the first reads the model's own argmax, in both engines."""
    config = _config(attention, "gru", 2, True)
    torch.manual_seed(5)
    torch_model = TorchEncoderDecoder(config).eval()
    model = build_model(config, export_tensors(torch_model))
    src, lengths, tgt = _batch(seed=6, target_len=6)
    logits_t = torch_model(torch.from_numpy(src), torch.from_numpy(lengths), torch.from_numpy(tgt), teacher_forcing=0.0)
    logits = model.forward(src, lengths, tgt, rng=np.random.default_rng(0), teacher_forcing=0.0)
    np.testing.assert_allclose(logits, logits_t.detach().numpy(), atol=TOL, rtol=0)
    upstream = np.random.default_rng(7).standard_normal(logits.shape).astype(np.float32)
    (logits_t * torch.from_numpy(upstream)).sum().backward()
    grads = model.backward(upstream)
    for name, param in torch_model.shared_parameters().items():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), atol=TOL, rtol=0, err_msg=name)

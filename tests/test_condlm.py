"""The conditional language model (`rnnkit train generate-review`): text from a label, one-to-many.

The label is a one-hot vector into the one_to_many model's bridge (the initial
state); the words are a word LM's (tasks/wordlm's vocabulary, sampling and output
layers). Tiny runs of seconds: what is tested is that each piece is right and the
commands keep their contract, not how well a review reads.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.config import ModelConfig
from rnnkit.numpy_engine import build_model, init_parameters
from rnnkit.numpy_engine.gradcheck import assert_gradients_close
from rnnkit.params import parameter_shapes

torch = pytest.importorskip("torch")


def one_to_many(layer: str, V: int = 30, H: int = 16, E: int = 8, cell: str = "lstm", layers: int = 1,
                K: int = 2) -> ModelConfig:
    return ModelConfig(vocab_size=V, output_size=V, cell=cell, embedding_dim=E, hidden_size=H, num_layers=layers,
                       bidirectional=False, dropout=0.0, architecture="one_to_many", input_size=K, padding_idx=0,
                       output_layer=layer, cutoffs=(6, 14) if layer == "adaptive" else None)


def _batch(rng, V=30, K=2):
    """A padded batch: features one-hot (3, K), tokens/targets (3, 7) with post-padding, and its mask."""
    lengths = np.array([7, 4, 2])
    tokens, targets = rng.integers(2, V, (3, 7)), rng.integers(1, V, (3, 7))
    mask = np.arange(7)[None, :] < lengths[:, None]
    tokens[~mask], targets[~mask] = 0, 0
    return np.eye(K)[[0, 1, 1]], tokens, targets, mask


def _torch_twin(config, params):
    from rnnkit.torch_engine import build_model as build_torch

    module = build_torch(config).double().eval()
    with torch.no_grad():
        for name, p in module.shared_parameters().items():
            p.copy_(torch.from_numpy(params[name]))
    return module


# --------------------------------------------------------------------------- the engines


@pytest.mark.parametrize("layer, cell, layers", [("dense", "gru", 1), ("tied", "lstm", 2), ("adaptive", "lstm", 1),
                                                 ("adaptive", "rnn", 2)])
def test_numpy_and_torch_agree_on_the_masked_loss_and_every_gradient_in_float64(layer, cell, layers):
    config = one_to_many(layer, cell=cell, layers=layers)
    params = init_parameters(config, np.random.default_rng(0), dtype=np.float64)
    features, tokens, targets, mask = _batch(np.random.default_rng(1))
    model = build_model(config, params)
    loss, log_p, _ = model.loss(features, tokens, targets, mask)
    grads = model.loss_backward()
    assert set(grads) == set(parameter_shapes(config)) and "bridge.weight" in grads
    assert np.all(log_p[~mask] == 0) and np.isclose(loss, -log_p[mask].mean())

    module = _torch_twin(config, params)
    log_p_t, _ = module(torch.from_numpy(features), torch.from_numpy(tokens), targets=torch.from_numpy(targets))
    m = torch.from_numpy(mask)
    loss_t = -(log_p_t * m).sum() / m.sum()
    loss_t.backward()
    assert abs(loss - loss_t.item()) < 1e-12
    np.testing.assert_allclose(log_p[mask], log_p_t.detach().numpy()[mask], atol=1e-12, rtol=0)
    for name, p in module.shared_parameters().items():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-12, rtol=0, err_msg=name)


@pytest.mark.parametrize("layer", ["dense", "tied", "adaptive"])
def test_numpy_masked_loss_gradients_equal_finite_differences(layer):
    config = one_to_many(layer, V=20, H=16, E=4, cell="gru")
    config = ModelConfig(**{**config.to_dict(), "cutoffs": [5, 12] if layer == "adaptive" else None})
    params = {k: v * 2 for k, v in init_parameters(config, np.random.default_rng(2), dtype=np.float64).items()}
    model = build_model(config, params)
    features, tokens, targets, mask = _batch(np.random.default_rng(3), V=20)
    model.loss(features, tokens, targets, mask)
    analytic = {k: v.copy() for k, v in model.loss_backward().items()}
    assert_gradients_close(lambda arrays: model.loss(features, tokens, targets, mask)[0], params, analytic)


def test_padding_changes_nothing_the_mask_keeps():
    config = one_to_many("adaptive")
    model = build_model(config, init_parameters(config, np.random.default_rng(0), dtype=np.float64))
    features, tokens, targets, mask = _batch(np.random.default_rng(4))
    short, _, _ = model.loss(features[1:2], tokens[1:2, :4], targets[1:2, :4])
    _, log_p, _ = model.loss(features, tokens, targets, mask)
    assert np.isclose(short, -log_p[1, :4].mean())


def test_decoding_step_by_step_from_the_label_state_equals_teacher_forcing():
    config = one_to_many("tied", cell="lstm", layers=2)
    params = init_parameters(config, np.random.default_rng(0), dtype=np.float64)
    model, module = build_model(config, params), _torch_twin(config, params)
    features, tokens, _, _ = _batch(np.random.default_rng(5))
    whole, _ = model.forward(features, tokens)
    state = model.initial_state(features)
    pieces = []
    for t in range(tokens.shape[1]):
        logits, state = model.decode(tokens[:, t:t + 1], state)
        pieces.append(logits)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, atol=1e-12, rtol=0)
    with torch.no_grad():
        by_torch, _ = module(torch.from_numpy(features), torch.from_numpy(tokens))
    np.testing.assert_allclose(by_torch.numpy(), whole, atol=1e-12, rtol=0)

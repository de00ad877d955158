"""The numpy engine's models against the torch engine: same weights -> same outputs and gradients."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnkit.config import ModelConfig  # noqa: E402
from rnnkit.numpy_engine import build_model as build_numpy  # noqa: E402
from rnnkit.torch_engine import build_model as build_torch  # noqa: E402
from rnnkit.torch_engine import export_tensors  # noqa: E402

TOL = 1e-5


def _pair(config: ModelConfig, seed: int = 0):
    torch.manual_seed(seed)
    torch_model = build_torch(config).eval()
    tensors = export_tensors(torch_model)
    return torch_model, build_numpy(config, tensors), tensors


def _batch(config: ModelConfig, lengths, seed: int = 1):
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths, dtype=np.int64)
    ids = rng.integers(1, config.vocab_size, size=(len(lengths), int(lengths.max())))
    ids[np.arange(ids.shape[1])[None, :] >= lengths[:, None]] = 0  # post-padding
    return ids, lengths


def assert_same_gradients(numpy_model, torch_model, logits_t, upstream: np.ndarray) -> None:
    """Backpropagate `upstream` through both engines; every parameter's gradient must agree."""
    (logits_t * torch.from_numpy(upstream)).sum().backward()
    grads = numpy_model.backward(upstream)
    expected = {n: p.grad for n, p in torch_model.shared_parameters().items()}
    assert grads.keys() == expected.keys()
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, expected[name].numpy(), atol=TOL, rtol=0, err_msg=name)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional,layers,pooling", [
    (False, 1, "last"), (True, 1, "last"), (True, 2, "mean_max"), (False, 3, "max"), (True, 2, "mean")])
def test_many_to_one_matches_torch_outputs_and_gradients(cell, bidirectional, layers, pooling):
    config = ModelConfig(vocab_size=30, cell=cell, embedding_dim=6, hidden_size=5, num_layers=layers,
                         bidirectional=bidirectional, pooling=pooling, output_size=2)
    torch_model, numpy_model, _ = _pair(config)
    ids, lengths = _batch(config, [9, 4, 1, 7, 9])
    logits_t = torch_model(torch.from_numpy(ids), torch.from_numpy(lengths))
    logits_n = numpy_model.forward(ids, lengths)
    np.testing.assert_allclose(logits_n, logits_t.detach().numpy(), atol=TOL, rtol=0)
    upstream = np.random.default_rng(2).standard_normal(logits_n.shape).astype(np.float32)
    assert_same_gradients(numpy_model, torch_model, logits_t, upstream)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_many_to_many_matches_torch_with_a_carried_state(cell):
    config = ModelConfig(vocab_size=12, cell=cell, embedding_dim=4, hidden_size=6, num_layers=2,
                         architecture="many_to_many", output_size=12)
    torch_model, numpy_model, _ = _pair(config)
    ids = np.random.default_rng(3).integers(0, 12, size=(3, 8))
    first_t, state_t = torch_model(torch.from_numpy(ids[:, :4]))
    first_n, state_n = numpy_model.forward(ids[:, :4])
    detached = tuple(s.detach() for s in state_t) if cell == "lstm" else state_t.detach()  # truncated BPTT
    logits_t, _ = torch_model(torch.from_numpy(ids[:, 4:]), detached)
    logits_n, final_n = numpy_model.forward(ids[:, 4:], state_n)
    np.testing.assert_allclose(first_n, first_t.detach().numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(logits_n, logits_t.detach().numpy(), atol=TOL, rtol=0)
    upstream = np.random.default_rng(4).standard_normal(logits_n.shape).astype(np.float32)
    assert_same_gradients(numpy_model, torch_model, logits_t, upstream)


def test_numpy_engine_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np, rnnkit.numpy_engine as ne; from rnnkit.config import ModelConfig;"
            "m = ne.build_model(ModelConfig(vocab_size=9), rng=np.random.default_rng(0));"
            "m.forward(np.ones((2, 3), dtype=np.int64), np.array([3, 2]));"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_one_to_many_matches_torch_outputs_gradients_and_generation(cell, layers):
    from rnnkit.params import parameter_shapes

    config = ModelConfig(vocab_size=9, cell=cell, embedding_dim=4, hidden_size=5, num_layers=layers,
                         architecture="one_to_many", output_size=9, input_size=3)
    torch_model, numpy_model, tensors = _pair(config)
    assert {k: v.shape for k, v in tensors.items()} == parameter_shapes(config)
    rng = np.random.default_rng(5)
    features = rng.standard_normal((4, 3)).astype(np.float32)
    tokens = rng.integers(0, 9, size=(4, 6))
    features_t = torch.from_numpy(features).requires_grad_(True)
    logits_t, final_t = torch_model(features_t, torch.from_numpy(tokens))
    logits_n, final_n = numpy_model.forward(features, tokens)
    np.testing.assert_allclose(logits_n, logits_t.detach().numpy(), atol=TOL, rtol=0)
    for ours, theirs in zip(final_n if cell == "lstm" else (final_n,), final_t if cell == "lstm" else (final_t,)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), atol=TOL, rtol=0)
    upstream = rng.standard_normal(logits_n.shape).astype(np.float32)
    assert_same_gradients(numpy_model, torch_model, logits_t, upstream)
    np.testing.assert_allclose(numpy_model.features_gradient, features_t.grad.numpy(), atol=TOL, rtol=0)
    generated = numpy_model.generate(features, bos=1, steps=7)
    assert generated.tolist() == torch_model.generate(torch.from_numpy(features), bos=1, steps=7).tolist()
    again = numpy_model.forward(features, np.concatenate([np.ones((4, 1), np.int64), generated[:, :-1]], axis=1))[0]
    assert again.argmax(-1).tolist() == generated.tolist()  # greedy generation = teacher forcing on its own tokens
    sampled = numpy_model.generate(features, 1, 7, temperature=1.0, rng=np.random.default_rng(0))
    assert sampled.tolist() == numpy_model.generate(features, 1, 7, temperature=1.0,
                                                    rng=np.random.default_rng(0)).tolist()


def test_one_to_many_refuses_configs_it_cannot_generate_with():
    from rnnkit.errors import ConfigError

    for bad in ({"bidirectional": True}, {"output_size": 1}):
        config = ModelConfig(**{"vocab_size": 9, "architecture": "one_to_many", "output_size": 9, "input_size": 3,
                                **bad})
        with pytest.raises(ConfigError, match="one_to_many"):
            build_numpy(config, rng=np.random.default_rng(0))
        with pytest.raises(ConfigError, match="one_to_many"):
            build_torch(config)


def test_one_to_many_weights_round_trip_between_engines(tmp_path):
    from safetensors.numpy import load_file, save_file

    from rnnkit.torch_engine import load_tensors

    config = ModelConfig(vocab_size=7, cell="gru", embedding_dim=4, hidden_size=5, num_layers=2,
                         architecture="one_to_many", output_size=7, input_size=3)
    torch.manual_seed(0)
    trained = build_torch(config).eval()
    save_file(export_tensors(trained), tmp_path / "model.safetensors")  # the bundle's weight format
    tensors = load_file(tmp_path / "model.safetensors")
    features = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    by_numpy = build_numpy(config, tensors).generate(features, bos=1, steps=6)
    by_torch = load_tensors(build_torch(config), tensors).eval().generate(torch.from_numpy(features), 1, 6)
    assert by_numpy.tolist() == by_torch.tolist() == trained.generate(torch.from_numpy(features), 1, 6).tolist()

"""Learning-rate schedules, discriminative rates and gradual unfreezing: the same on both engines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnkit.config import TrainConfig
from rnnkit.errors import ConfigError
from rnnkit.training import schedule


def test_the_exponential_schedule_is_the_per_epoch_decay():
    config = TrainConfig(learning_rate=0.1, lr_decay=0.5)
    assert [schedule.learning_rate(config, epoch, 0, 100) for epoch in (1, 2, 3)] == [0.1, 0.05, 0.025]


def test_warmup_rises_linearly_then_linear_and_cosine_decay_to_zero():
    linear = TrainConfig(learning_rate=1.0, lr_schedule="linear", warmup=0.1)
    rates = [schedule.learning_rate(linear, 1, step, 100) for step in range(100)]
    assert rates[:10] == pytest.approx([(k + 1) / 10 for k in range(10)])
    assert rates[10] == 1.0 and rates[55] == pytest.approx(0.5) and 0 < rates[-1] < 0.02
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    cosine = TrainConfig(learning_rate=1.0, lr_schedule="cosine")
    assert schedule.learning_rate(cosine, 1, 50, 100) == pytest.approx(0.5)
    assert schedule.learning_rate(cosine, 1, 0, 100) == 1.0


def test_layers_count_from_the_head_down_to_the_embedding():
    names = ["embedding.weight", "rnn.weight_ih_l0", "rnn.bias_hh_l0_reverse", "rnn.weight_hh_l1", "head.weight",
             "head.bias"]
    assert schedule.layer_depths(names) == {"embedding.weight": 3, "rnn.weight_ih_l0": 2,
                                            "rnn.bias_hh_l0_reverse": 2, "rnn.weight_hh_l1": 1, "head.weight": 0,
                                            "head.bias": 0}
    config = TrainConfig(layer_lr_decay=2.0, gradual_unfreeze=True)
    assert schedule.lr_scale(config, 3) == 0.125
    assert [schedule.trainable_below(config, epoch) for epoch in (1, 2)] == [1, 2]
    assert schedule.trainable_below(TrainConfig(), 1) is None


@pytest.mark.parametrize("field, value, flag", [("lr_schedule", "step", "lr_schedule"), ("warmup", 1.0, "--warmup"),
                                                ("warmup", -0.1, "--warmup"),
                                                ("layer_lr_decay", 0.5, "--layer-lr-decay"),
                                                ("layer_lr_decay", math.nan, "--layer-lr-decay"),
                                                ("gradual_unfreeze", "yes", "--gradual-unfreeze")])
def test_bad_schedule_options_name_their_flag(field, value, flag):
    with pytest.raises(ConfigError, match=flag):
        TrainConfig(**{field: value})


# --------------------------------------------------------------------------- both engines

def _torch_model(torch):
    """Embedding -> 2-layer LSTM -> head, float64: the parameter names of a classifier."""
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.embedding = torch.nn.Embedding(7, 3)
    model.rnn = torch.nn.LSTM(3, 4, num_layers=2)
    model.head = torch.nn.Linear(4, 2)
    return model.double()


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_both_backends_take_the_same_steps_with_every_option(optimizer):
    """Warm-up, linear decay, per-layer rates, gradual unfreezing, weight decay and clipping over 4 epochs:
    numpy's optimizer lands on torch's weights (float64), and a layer frozen in an epoch does not move."""
    torch = pytest.importorskip("torch")
    from rnnkit.training.backends import NumpyBackend, TorchBackend

    model = _torch_model(torch)
    names = [name for name, _ in model.named_parameters()]
    rng = np.random.default_rng(1)
    targets = {name: rng.normal(size=tuple(p.shape)) for name, p in model.named_parameters()}
    scales = {name: rng.uniform(0.5, 2.0, size=tuple(p.shape)) for name, p in model.named_parameters()}

    class Plain:  # what NumpyBackend needs of a numpy model
        params = {name: p.detach().numpy().copy() for name, p in model.named_parameters()}

    config = TrainConfig(optimizer=optimizer, learning_rate=0.05, weight_decay=0.01, clip_norm=1.0,
                         lr_schedule="linear", warmup=0.25, layer_lr_decay=2.6, gradual_unfreeze=True, epochs=4)
    torch_backend, numpy_backend = TorchBackend(model, config), NumpyBackend(Plain, config, rng)

    def torch_step(m, batch):
        loss = sum((0.5 * torch.from_numpy(scales[n]) * (p - torch.from_numpy(targets[n])) ** 2).sum() * batch
                   for n, p in m.named_parameters())
        return loss, 1, {}

    def numpy_step(m, batch, _rng):
        loss = sum(float((0.5 * scales[n] * (p - targets[n]) ** 2).sum()) * batch for n, p in m.params.items())
        return loss, 1, {}, {n: scales[n] * (p - targets[n]) * batch for n, p in m.params.items()}

    depths = schedule.layer_depths(names)
    steps_per_epoch, step = 3, 0
    for epoch in range(1, config.epochs + 1):
        before = {n: v.copy() for n, v in Plain.params.items()}
        for batch in range(steps_per_epoch):
            for backend, fn in ((torch_backend, torch_step), (numpy_backend, numpy_step)):
                backend.set_position(epoch, step, config.epochs * steps_per_epoch)
                backend.step(fn, 1.0 + batch)
            step += 1
        for name in names:
            moved = not np.array_equal(before[name], Plain.params[name])
            assert moved == (depths[name] < epoch), (epoch, name)
            np.testing.assert_allclose(Plain.params[name], dict(model.named_parameters())[name].detach().numpy(),
                                       rtol=1e-10, atol=1e-12, err_msg=f"epoch {epoch} {name}")
    assert torch_backend.learning_rate == pytest.approx(numpy_backend.learning_rate)
    assert numpy_backend.optimizer.steps["embedding.weight"] == steps_per_epoch  # unfrozen in the last epoch only


def test_a_numpy_checkpoint_from_before_per_parameter_steps_still_resumes():
    from rnnkit.training.backends import NumpyBackend

    class Plain:
        params = {"head.weight": np.zeros((2, 2)), "embedding.weight": np.zeros((3, 2))}

    backend = NumpyBackend(Plain, TrainConfig(), np.random.default_rng(0))
    tensors, meta = backend.state()
    meta.pop("steps")
    backend.load_state(tensors, {**meta, "t": 7})
    assert backend.optimizer.steps == {"head.weight": 7, "embedding.weight": 7}

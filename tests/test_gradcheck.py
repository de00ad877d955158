"""Every hand-written backward of the numpy engine against central finite differences (float64, rel. error <= 1e-6).

Each test builds a scalar loss sum(output * R) (R random, fixed) of the arrays
it perturbs, runs the engine's backward with R as the upstream gradient, and
compares every parameter and input gradient with `gradcheck.check_gradients`.
Sizes are tiny (a few hundred numbers), so the whole file runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.config import ModelConfig
from rnnkit.numpy_engine import cells, gradcheck, losses
from rnnkit.numpy_engine.layers import Dense, Dropout, Embedding, Pooling
from rnnkit.numpy_engine.models import build_model, init_parameters
from rnnkit.numpy_engine.recurrent import Recurrent, StackedRecurrent

TOL = 1e-6
CELL_NAMES = ("rnn", "lstm", "gru")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _normal(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def _check(f, arrays, analytic, padding_rows: dict[str, int] | None = None):
    """Assert every analytic gradient is within TOL of finite differences.

    padding_rows: name -> row of an embedding's padding token, whose gradient the
    engine zeroes on purpose (see test_padding_row_is_frozen_as_in_torch): that
    row must be exactly zero, and the check covers the other rows.
    """
    analytic = {k: np.array(v) for k, v in analytic.items()}
    assert set(analytic) <= set(arrays), sorted(set(analytic) - set(arrays))
    errors = {}
    for name, grad in analytic.items():
        numeric = gradcheck.numerical_gradient(f, arrays, name)
        row = (padding_rows or {}).get(name)
        if row is not None:
            assert np.all(grad[row] == 0.0), f"{name}: the padding row must get no gradient"
            grad, numeric = np.delete(grad, row, axis=0), np.delete(numeric, row, axis=0)
        errors[name] = gradcheck.relative_error(grad, numeric)
    bad = {k: v for k, v in errors.items() if not v <= TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"
    return errors


# --------------------------------------------------------------------------- the checker itself

def test_gradcheck_finds_a_wrong_gradient_and_refuses_float32():
    arrays = {"w": np.array([0.3, -1.2, 2.0]), "x": np.array([1.5, 0.5, -0.7])}

    def f(a):
        return float(np.sum(np.sin(a["w"] * a["x"])))

    right = {"w": np.cos(arrays["w"] * arrays["x"]) * arrays["x"], "x": np.cos(arrays["w"] * arrays["x"]) * arrays["w"]}
    errors = gradcheck.assert_gradients_close(f, arrays, right)
    assert max(errors.values()) < 1e-9
    wrong = {"w": right["w"] * np.array([1.0, 1.0, 1.001])}
    with pytest.raises(AssertionError, match="w: "):
        gradcheck.assert_gradients_close(f, arrays, wrong)
    assert arrays["w"].tolist() == [0.3, -1.2, 2.0]  # perturbations are undone
    with pytest.raises(TypeError, match="float64"):
        gradcheck.numerical_gradient(f, {"w": arrays["w"].astype(np.float32), "x": arrays["x"]}, "w")
    assert gradcheck.relative_error(np.zeros(3), np.zeros(3)) == 0.0


# --------------------------------------------------------------------------- cells

@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("bias_in_step", [True, False])
def test_cell_step_gradients(cell, bias_in_step):
    if cell == "gru" and not bias_in_step:
        pytest.skip("gru's b_hn cannot be folded into xw")
    spec = cells.CELLS[cell]
    rng, N, D, H = _rng(1), 3, 4, 5
    G = spec.gates
    arrays = {"x": _normal(rng, N, D), "w_ih": _normal(rng, G * H, D, scale=0.5), "b_ih": _normal(rng, G * H),
              "w_hh": _normal(rng, G * H, H, scale=0.5), "b_hh": _normal(rng, G * H),
              **{f"{name}_prev": _normal(rng, N, H) for name in spec.state_names}}
    upstream = [_normal(rng, N, H) for _ in spec.state_names]

    def run(a):
        xw = a["x"] @ a["w_ih"].T + a["b_ih"]
        if not bias_in_step:
            xw = xw + a["b_hh"]
        state = tuple(a[f"{name}_prev"] for name in spec.state_names)
        return spec.step(xw, state, a["w_hh"], a["b_hh"] if bias_in_step else None)

    def f(a):
        new, _ = run(a)
        return float(sum(np.sum(s * u) for s, u in zip(new, upstream)))

    new, cache = run(arrays)
    assert all(s.dtype == np.float64 for s in new)
    dxw, dhw, dprev = spec.step_backward(tuple(upstream), cache, arrays["w_hh"])
    analytic = {"x": dxw @ arrays["w_ih"], "w_ih": dxw.T @ arrays["x"], "b_ih": dxw.sum(0),
                "w_hh": dhw.T @ arrays["h_prev"],
                "b_hh": dhw.sum(0) if bias_in_step else dxw.sum(0),
                **{f"{name}_prev": d for name, d in zip(spec.state_names, dprev)}}
    _check(f, arrays, analytic)


def test_lstm_step_values_by_hand():
    """A fixed LSTM step against the textbook formulas, gate by gate (i|f|g|o)."""
    xw = np.array([[0.5, -1.0, 2.0, 0.1]])  # H = 1: i, f, g, o pre-activations
    (h, c), _ = cells.lstm_step(xw, (np.array([[0.0]]), np.array([[0.3]])), np.zeros((4, 1)))
    s = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    expected_c = s(-1.0) * 0.3 + s(0.5) * np.tanh(2.0)
    np.testing.assert_allclose(c, [[expected_c]], rtol=1e-12)
    np.testing.assert_allclose(h, [[s(0.1) * np.tanh(expected_c)]], rtol=1e-12)


# --------------------------------------------------------------------------- recurrent layers

def _recurrent_arrays(rng, cell, D, H):
    G = cells.CELLS[cell].gates
    return {"weight_ih": _normal(rng, G * H, D, scale=0.5), "weight_hh": _normal(rng, G * H, H, scale=0.5),
            "bias_ih": _normal(rng, G * H, scale=0.5), "bias_hh": _normal(rng, G * H, scale=0.5)}


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("lengths", [None, [4, 2, 1]])
def test_recurrent_layer_gradients_with_masks_initial_state_and_final_state(cell, lengths):
    rng, T, N, D, H = _rng(2), 4, 3, 2, 3
    names = cells.CELLS[cell].state_names
    arrays = {**_recurrent_arrays(rng, cell, D, H), "x": _normal(rng, T, N, D),
              **{f"{n}0": _normal(rng, N, H) for n in names}}
    layer = Recurrent(cell, *(arrays[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
    lengths = None if lengths is None else np.array(lengths)
    r_out, r_final = _normal(rng, T, N, H), [_normal(rng, N, H) for _ in names]

    def f(a):
        out, final = layer.forward(a["x"], lengths, tuple(a[f"{n}0"] for n in names))
        return float(np.sum(out * r_out) + sum(np.sum(s * r) for s, r in zip(final, r_final)))

    out, final = layer.forward(arrays["x"], lengths, tuple(arrays[f"{n}0"] for n in names))
    assert out.dtype == np.float64 and all(s.dtype == np.float64 for s in final)
    if lengths is not None:  # a finished sequence's state is carried, and its final state is its own last step's
        np.testing.assert_array_equal(out[2:, 1], np.broadcast_to(out[1, 1], (2, H)))
        np.testing.assert_array_equal(final[0][2], out[0, 2])
    dx, dstate0 = layer.backward(r_out, tuple(r_final))
    analytic = {"x": dx, **{f"{n}0": d for n, d in zip(names, dstate0)}, **layer.grads}
    _check(f, arrays, analytic)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_stacked_bidirectional_gradients_with_dropout_and_states(cell):
    rng, T, N, D, H, L = _rng(3), 4, 3, 2, 2, 2
    lengths = np.array([3, 4, 1])
    arrays = {"x": _normal(rng, T, N, D)}
    for layer in range(L):
        for suffix in ("", "_reverse"):
            for kind, value in _recurrent_arrays(rng, cell, D if layer == 0 else 2 * H, H).items():
                arrays[f"rnn.{kind}_l{layer}{suffix}"] = value
    state_shape = (L * 2, N, H)
    state_names = ["h0", "c0"] if cell == "lstm" else ["h0"]
    arrays.update({n: _normal(rng, *state_shape) for n in state_names})
    stack = StackedRecurrent(cell, arrays, "rnn.", L, True, dropout=0.3)
    r_out = _normal(rng, T, N, 2 * H)
    r_final = [_normal(rng, *state_shape) for _ in state_names]

    def state(a):
        return tuple(a[n] for n in state_names) if cell == "lstm" else a["h0"]

    def f(a):
        out, final = stack.forward(a["x"], lengths, state(a), train=True, rng=_rng(7))  # the same dropout masks
        final = final if isinstance(final, tuple) else (final,)
        return float(np.sum(out * r_out) + sum(np.sum(s * r) for s, r in zip(final, r_final)))

    stack.forward(arrays["x"], lengths, state(arrays), train=True, rng=_rng(7))
    dx, dstate0 = stack.backward(r_out, tuple(r_final) if cell == "lstm" else r_final[0])
    dstate0 = dstate0 if isinstance(dstate0, tuple) else (dstate0,)
    analytic = {"x": dx, **dict(zip(state_names, dstate0)), **stack.named_gradients()}
    _check(f, arrays, analytic)


# --------------------------------------------------------------------------- other layers and losses

def test_embedding_dense_and_dropout_gradients():
    rng = _rng(4)
    ids = np.array([[1, 3, 0], [2, 2, 4]])  # 0 is padding
    arrays = {"embedding": _normal(rng, 5, 3), "weight": _normal(rng, 2, 3), "bias": _normal(rng, 2)}
    arrays["embedding"][0] = 0.0
    embedding, dense, dropout = Embedding(arrays["embedding"], padding_idx=0), Dense(arrays["weight"], arrays["bias"]), Dropout(0.4)
    upstream = _normal(rng, 3, 2, 2)

    def forward(a):
        x = embedding.forward(ids)  # (T, N, E)
        return dense.forward(dropout.forward(x, train=True, rng=_rng(9)))

    def f(a):
        return float(np.sum(forward(a) * upstream))

    y = forward(arrays)
    assert y.dtype == np.float64
    embedding.backward(dropout.backward(dense.backward(upstream)))
    _check(f, arrays, {"embedding": embedding.grads["weight"], "weight": dense.grads["weight"],
                       "bias": dense.grads["bias"]}, padding_rows={"embedding": 0})


def test_padding_row_is_frozen_as_in_torch():
    """The padding row is read (its true gradient is not zero), but like torch.nn.Embedding(padding_idx) its
    gradient is zero, so it stays zero; every other row's gradient is the true one."""
    weight = _normal(_rng(8), 4, 2)
    embedding = Embedding(weight, padding_idx=0)
    embedding.forward(np.array([[0, 1, 0]]))
    embedding.backward(np.ones((3, 1, 2)))
    np.testing.assert_array_equal(embedding.grads["weight"], [[0, 0], [1, 1], [0, 0], [0, 0]])


@pytest.mark.parametrize("mode", ["last", "max", "mean", "mean_max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pooling_gradients(mode, bidirectional):
    rng, T, N, H = _rng(5), 5, 3, 2
    K = 2 if bidirectional else 1
    lengths = np.array([5, 2, 3])
    arrays = {"outputs": _normal(rng, T, N, K * H)}
    pooling = Pooling(mode, H, bidirectional)
    width = K * H * (2 if mode == "mean_max" else 1)
    upstream = _normal(rng, N, width)

    def f(a):
        return float(np.sum(pooling.forward(a["outputs"], lengths) * upstream))

    assert pooling.forward(arrays["outputs"], lengths).shape == (N, width)
    _check(f, arrays, {"outputs": pooling.backward(upstream)})


def test_loss_gradients():
    rng = _rng(6)
    arrays = {"binary": _normal(rng, 4, 1, scale=3.0), "categorical": _normal(rng, 2, 3, 5, scale=2.0)}
    y_binary = np.array([[1.0], [0.0], [1.0], [0.0]])
    y_cat = np.array([[1, 0, 4], [2, 0, 3]])  # 0 ignored (padding)

    def f(a):
        return (losses.binary_cross_entropy_with_logits(a["binary"], y_binary)[0]
                + losses.cross_entropy_with_logits(a["categorical"], y_cat, ignore_index=0)[0])

    analytic = {"binary": losses.binary_cross_entropy_with_logits(arrays["binary"], y_binary)[1],
                "categorical": losses.cross_entropy_with_logits(arrays["categorical"], y_cat, ignore_index=0)[1]}
    _check(f, arrays, analytic)


# --------------------------------------------------------------------------- models

def float64_parameters(config: ModelConfig, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """torch-like initial parameters in float64; scale > 1 enlarges the weights so that every path (e.g. an
    attention that is nearly uniform at initialisation) moves the loss enough for finite differences to see
    its gradient (a gradient of 1e-7 is below their rounding floor of about 1e-11 / 1e-6 relative)."""
    params = init_parameters(config, _rng(seed), dtype=np.float64)
    for value in params.values():
        value *= scale
    return params


def _embedding_rows(params: dict, config: ModelConfig) -> dict[str, int]:
    return {name: config.padding_idx for name in params if name.endswith("embedding.weight")}


@pytest.mark.parametrize("cell,bidirectional,layers,pooling", [
    ("rnn", False, 1, "last"), ("lstm", True, 2, "mean_max"), ("gru", True, 1, "last"), ("lstm", False, 2, "max"),
    ("gru", False, 1, "mean")])
def test_many_to_one_model_gradients(cell, bidirectional, layers, pooling):
    config = ModelConfig(vocab_size=7, cell=cell, embedding_dim=3, hidden_size=2, num_layers=layers,
                         bidirectional=bidirectional, pooling=pooling, output_size=1, dropout=0.2)
    params = float64_parameters(config)
    model = build_model(config, params)
    ids = np.array([[1, 2, 3, 4], [5, 6, 0, 0], [3, 0, 0, 0]])
    lengths, labels = np.array([4, 2, 1]), np.array([[1.0], [0.0], [1.0]])

    def run(a):
        logits = model.forward(ids, lengths, train=True, rng=_rng(11))  # the same dropout masks every time
        return losses.binary_cross_entropy_with_logits(logits, labels), logits

    def f(a):
        return run(a)[0][0]

    (_, dlogits), logits = run(params)
    assert logits.dtype == np.float64
    grads = model.backward(dlogits)
    assert grads.keys() == params.keys()
    _check(f, params, grads, _embedding_rows(params, config))


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_many_to_many_model_gradients_through_the_carried_state(cell):
    config = ModelConfig(vocab_size=6, cell=cell, embedding_dim=3, hidden_size=2, num_layers=2,
                         architecture="many_to_many", output_size=6)
    params = float64_parameters(config)
    model = build_model(config, params)
    ids, targets = np.array([[1, 2, 3], [4, 5, 1]]), np.array([[2, 3, 4], [5, 1, 0]])
    state_shape = (2, 2, 2)
    rng = _rng(12)
    params_and_state = dict(params, h0=_normal(rng, *state_shape), c0=_normal(rng, *state_shape))
    r_final = _normal(rng, *state_shape)

    def state(a):
        return (a["h0"], a["c0"]) if cell == "lstm" else a["h0"]

    def run(a):
        logits, final = model.forward(ids, state(a))
        h = final[0] if cell == "lstm" else final
        return logits, losses.cross_entropy_with_logits(logits, targets, ignore_index=0), h

    def f(a):
        _, (value, _), h = run(a)
        return value + float(np.sum(h * r_final))

    logits, (_, dlogits), _ = run(params_and_state)
    dfinal = (r_final, np.zeros(state_shape)) if cell == "lstm" else r_final
    grads = dict(model.backward(dlogits, dfinal))
    dstate0 = model.initial_state_gradient
    grads.update(h0=dstate0[0] if cell == "lstm" else dstate0)
    if cell == "lstm":
        grads["c0"] = dstate0[1]
    else:
        params_and_state.pop("c0")
    _check(f, params_and_state, grads, _embedding_rows(params, config))


@pytest.mark.parametrize("condition", ["initial", "every_step"])
@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("lstm", 2), ("gru", 1)])
def test_one_to_many_model_gradients_including_the_input_vector(cell, layers, condition):
    config = ModelConfig(vocab_size=5, cell=cell, embedding_dim=2, hidden_size=3, num_layers=layers,
                         architecture="one_to_many", output_size=5, input_size=2, dropout=0.25, condition=condition)
    params = float64_parameters(config)
    model = build_model(config, params)
    arrays = dict(params, features=_normal(_rng(13), 2, 2))
    tokens, targets = np.array([[1, 2, 3], [1, 4, 4]]), np.array([[2, 3, 0], [4, 4, 2]])

    def run(a):
        logits, _ = model.forward(a["features"], tokens, train=True, rng=_rng(14))
        return losses.cross_entropy_with_logits(logits, targets, ignore_index=0)

    grads = dict(model.backward(run(arrays)[1]), features=model.features_gradient)
    _check(lambda a: run(a)[0], arrays, grads, _embedding_rows(params, config))


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong"])
@pytest.mark.parametrize("cell,layers,bidirectional", [("rnn", 1, False), ("lstm", 2, True), ("gru", 1, True)])
def test_encoder_decoder_gradients(attention, cell, layers, bidirectional):
    config = ModelConfig(vocab_size=6, target_vocab_size=5, architecture="encoder_decoder", cell=cell,
                         embedding_dim=2, hidden_size=2, num_layers=layers, bidirectional=bidirectional,
                         attention=attention, dropout=0.2)
    params = float64_parameters(config, scale=2.0)
    model = build_model(config, params)
    src, lengths = np.array([[4, 5, 2], [3, 0, 0]]), np.array([3, 1])  # a padded source
    tgt_in, tgt_out = np.array([[2, 4, 3], [2, 1, 0]]), np.array([[4, 3, 3], [1, 3, 0]])

    def run(a):
        logits = model.forward(src, lengths, tgt_in, train=True, rng=_rng(15))
        return losses.cross_entropy_with_logits(logits, tgt_out, ignore_index=0)

    grads = model.backward(run(params)[1])
    assert grads.keys() == params.keys()
    _check(lambda a: run(a)[0], params, grads, _embedding_rows(params, config))


@pytest.mark.parametrize("attention", ["none", "luong"])
def test_encoder_decoder_gradients_when_feeding_back_predictions(attention):
    """teacher_forcing < 1 runs the step-by-step decoder for every attention kind (with its own dropout)."""
    config = ModelConfig(vocab_size=6, target_vocab_size=5, architecture="encoder_decoder", cell="lstm",
                         embedding_dim=2, hidden_size=2, num_layers=2, attention=attention, dropout=0.2)
    params = float64_parameters(config, scale=2.0)
    model = build_model(config, params)
    src, lengths = np.array([[4, 5, 2], [3, 1, 0]]), np.array([3, 2])
    tgt_in, tgt_out = np.array([[2, 4, 3, 4], [2, 1, 3, 0]]), np.array([[4, 3, 4, 3], [1, 3, 0, 0]])

    def run(a):
        logits = model.forward(src, lengths, tgt_in, train=True, rng=_rng(16), teacher_forcing=0.5)
        return losses.cross_entropy_with_logits(logits, tgt_out, ignore_index=0)

    grads = model.backward(run(params)[1])
    _check(lambda a: run(a)[0], params, grads, _embedding_rows(params, config))


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_bag_of_words_model_gradients(padding):
    """The one_to_one model (--model bow): the mean of the real tokens' embeddings -> tanh(dense) -> head."""
    config = ModelConfig(vocab_size=7, architecture="one_to_one", embedding_dim=3, hidden_size=4, output_size=2,
                         dropout=0.2)
    params = float64_parameters(config)
    model = build_model(config, params)
    if padding == "post":
        ids, lengths = np.array([[1, 2, 3, 4], [5, 6, 0, 0], [3, 0, 0, 0]]), np.array([4, 2, 1])
    else:  # Keras-style: every length is T, the padding comes first and is left out by its id
        ids, lengths = np.array([[1, 2, 3, 4], [0, 0, 5, 6], [0, 0, 0, 3]]), np.array([4, 4, 4])
    labels = np.array([0, 1, 1])

    def run(a):
        logits = model.forward(ids, lengths, train=True, rng=_rng(13))  # the same dropout masks every time
        return losses.cross_entropy_with_logits(logits, labels), logits

    def f(a):
        return run(a)[0][0]

    (_, dlogits), logits = run(params)
    assert logits.dtype == np.float64
    grads = model.backward(dlogits)
    assert grads.keys() == params.keys() == {"embedding.weight", "dense.weight", "dense.bias", "head.weight",
                                             "head.bias"}
    assert np.all(grads["embedding.weight"][[0]] == 0) and np.any(grads["embedding.weight"][[1, 5]] != 0)
    _check(f, params, grads, _embedding_rows(params, config))

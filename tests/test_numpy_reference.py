"""The readable reference (`numpy_engine.reference`) and everything fast tested against it.

1. the reference against central finite differences (float64), one direction and a bidirectional stack;
2. the reference against a few numbers worked out by hand, and against torch.nn.RNN/LSTM/GRU (float64);
3. the fast recurrent layers (`recurrent.Recurrent`, `StackedRecurrent`) against the reference: outputs,
   final states, and the gradients of the input, the initial state and every weight, to 1e-10 in float64
   (random shapes, lengths and chunk boundaries), and in float32 to float32's rounding;
4. the inference path (`inference.many_to_one_logits`) against a many-to-one model composed from the
   reference: embedding, `reference.stack_forward`, pooling over real steps, head.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.config import ModelConfig
from rnnkit.numpy_engine import inference, init_parameters
from rnnkit.numpy_engine import reference as ref
from rnnkit.numpy_engine.gradcheck import assert_gradients_close
from rnnkit.numpy_engine.recurrent import Recurrent, StackedRecurrent
from rnnkit.numpy_engine.recurrent import reverse_within_lengths as fast_reverse_within_lengths

CELLS = ("rnn", "lstm", "gru")
TOL64 = 1e-10  # fast code against the reference in float64: the same math in another order, ~1e-15 in practice
TOL32 = 1e-5   # the fast code in float32 against the float64 reference: float32 rounding over the steps


def _direction_params(cell, D, H, rng, dtype=np.float64):
    G = ref.CELLS[cell].gates
    shapes = {"weight_ih": (G * H, D), "weight_hh": (G * H, H), "bias_ih": (G * H,), "bias_hh": (G * H,)}
    return {kind: rng.normal(0.0, 0.6, shape).astype(dtype) for kind, shape in shapes.items()}


def _stack_params(cell, D, H, num_layers, directions, rng, dtype=np.float64, prefix=""):
    params = {}
    for layer in range(num_layers):
        for d in range(directions):
            p = _direction_params(cell, D if layer == 0 else directions * H, H, rng, dtype)
            params.update({f"{prefix}{kind}_l{layer}{'_reverse' if d else ''}": a for kind, a in p.items()})
    return params


def _states(cell, shape, rng, dtype=np.float64):
    return tuple(rng.normal(size=shape).astype(dtype) for _ in range(ref.CELLS[cell].states))


def _time_major(a):
    return np.ascontiguousarray(a.transpose(1, 0, 2))


def _close(actual, expected, what, tol=TOL64):
    """|actual - expected| <= tol * the array's scale (max |expected|, at least 1), as gradcheck measures."""
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * scale, err_msg=what)


# --------------------------------------------------------------------------- 1. finite differences

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("lengths", [None, [4, 2, 0]])
def test_reference_backward_equals_finite_differences(cell, lengths):
    rng = np.random.default_rng(0)
    N, T, D, H = 3, 4, 3, 2
    names = ("h0", "c0")[:ref.CELLS[cell].states]
    arrays = {"x": rng.normal(size=(N, T, D)), **_direction_params(cell, D, H, rng),
              **dict(zip(names, _states(cell, (N, H), rng)))}
    r_out, r_final = rng.normal(size=(N, T, H)), _states(cell, (N, H), rng)

    def run(a):
        p = {kind: a[kind] for kind in ref.PARAM_KINDS}
        return ref.forward(cell, a["x"], p, tuple(a[n] for n in names), lengths)

    def loss(a):
        out, final, _ = run(a)
        return float(np.sum(out * r_out) + sum(np.sum(f * r) for f, r in zip(final, r_final)))

    _, _, cache = run(arrays)
    dx, d_state0, grads = ref.backward(r_out, r_final, cache)
    analytic = {"x": dx, **grads, **dict(zip(names, d_state0))}
    assert_gradients_close(loss, arrays, analytic, tolerance=1e-7)
    if lengths is not None:  # padded steps: no gradient into their inputs
        assert not dx[1, 2:].any() and not dx[2].any()


@pytest.mark.parametrize("cell", CELLS)
def test_reference_stack_backward_equals_finite_differences(cell):
    """Two bidirectional layers with lengths: the reverse direction and the layer-to-layer gradients."""
    rng = np.random.default_rng(1)
    N, T, D, H, L = 3, 4, 2, 2, 2
    params = _stack_params(cell, D, H, L, 2, rng)
    lengths = np.array([4, 1, 3])
    names = ("h0", "c0")[:ref.CELLS[cell].states]
    arrays = {"x": rng.normal(size=(N, T, D)), **params, **dict(zip(names, _states(cell, (L * 2, N, H), rng)))}
    r_out, r_final = rng.normal(size=(N, T, 2 * H)), _states(cell, (L * 2, N, H), rng)

    def run(a):
        return ref.stack_forward(cell, a["x"], {k: a[k] for k in params}, L, True,
                                 tuple(a[n] for n in names), lengths)

    def loss(a):
        out, final, _ = run(a)
        return float(np.sum(out * r_out) + sum(np.sum(f * r) for f, r in zip(final, r_final)))

    _, _, cache = run(arrays)
    dx, d_state0, grads = ref.stack_backward(r_out, r_final, cache)
    assert grads.keys() == params.keys()
    assert_gradients_close(loss, arrays, {"x": dx, **grads, **dict(zip(names, d_state0))}, tolerance=1e-7)


# --------------------------------------------------------------------------- 2. numbers by hand, torch.nn

def test_reference_steps_equal_numbers_worked_out_by_hand():
    """One unit, one step, distinct weights per gate block: a wrong gate order or GRU variant changes the numbers."""
    s = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    x, h_prev, c_prev = 0.5, -0.3, 0.2
    x_a, h_a = np.array([[x]]), np.array([[h_prev]])

    def params(G):  # block k: w_ih = k+1, w_hh = -(k+1)/2, b_ih = k/10, b_hh = -k/5
        k = np.arange(G, dtype=np.float64)
        return {"weight_ih": (k + 1)[:, None], "weight_hh": (-(k + 1) / 2)[:, None],
                "bias_ih": k / 10, "bias_hh": -k / 5}

    def pre(k, with_h=True):
        return (k + 1) * x + k / 10 + (with_h * (-(k + 1) / 2 * h_prev - k / 5))

    (h,), _ = ref.rnn_step(x_a, (h_a,), params(1))
    assert h[0, 0] == pytest.approx(math.tanh(pre(0)), abs=1e-15)

    (h, c), _ = ref.lstm_step(x_a, (h_a, np.array([[c_prev]])), params(4))
    i, f, g, o = s(pre(0)), s(pre(1)), math.tanh(pre(2)), s(pre(3))
    assert c[0, 0] == pytest.approx(f * c_prev + i * g, abs=1e-15)
    assert h[0, 0] == pytest.approx(o * math.tanh(f * c_prev + i * g), abs=1e-15)

    (h,), _ = ref.gru_step(x_a, (h_a,), params(3))
    r, z = s(pre(0)), s(pre(1))
    n = math.tanh(3 * x + 0.2 + r * (-1.5 * h_prev - 0.4))  # r multiplies h_n with b_hn inside
    assert h[0, 0] == pytest.approx((1 - z) * n + z * h_prev, abs=1e-15)


TORCH_CASES = [  # layers, bidirectional, lengths (None: every step real), T, N, D, H
    (1, False, None, 6, 3, 4, 5),
    (1, True, [6, 2, 5], 6, 3, 4, 5),
    (2, True, [3, 7, 1, 7], 7, 4, 3, 4),
    (2, False, [5, 1], 5, 2, 3, 3),
]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,bidirectional,lengths,T,N,D,H", TORCH_CASES)
def test_reference_equals_torch_nn(cell, layers, bidirectional, lengths, T, N, D, H):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(2)
    K = 2 if bidirectional else 1
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        D, H, num_layers=layers, bidirectional=bidirectional, batch_first=True).double()
    x = torch.randn(N, T, D, dtype=torch.float64, requires_grad=True)
    states = [torch.randn(layers * K, N, H, dtype=torch.float64, requires_grad=True)
              for _ in range(ref.CELLS[cell].states)]
    lengths_t = torch.full((N,), T) if lengths is None else torch.tensor(lengths)
    mask = (torch.arange(T)[None, :] < lengths_t[:, None]).double()[:, :, None]  # (N, T, 1)
    state = tuple(states) if cell == "lstm" else states[0]
    if lengths is None:
        out, final = module(x, state)
    else:  # torch's padded outputs are zeros where ours repeat the last state: compare and weight real steps only
        out, final = module(pack_padded_sequence(x, lengths_t, batch_first=True, enforce_sorted=False), state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    finals = final if isinstance(final, tuple) else (final,)
    r_out = torch.randn(N, T, K * H, dtype=torch.float64) * mask
    r_final = [torch.randn(f.shape, dtype=torch.float64) for f in finals]
    ((out * r_out).sum() + sum((f * r).sum() for f, r in zip(finals, r_final))).backward()

    params = {name: p.detach().numpy().copy() for name, p in module.named_parameters()}
    np_lengths = None if lengths is None else np.array(lengths)
    ours, our_final, cache = ref.stack_forward(cell, x.detach().numpy(), params, layers, bidirectional,
                                               tuple(s.detach().numpy() for s in states), np_lengths)
    _close(ours * mask.numpy(), out.detach().numpy(), "outputs")
    for a, b, name in zip(our_final, finals, ("h_n", "c_n")):
        _close(a, b.detach().numpy(), name)
    dx, d_state0, grads = ref.stack_backward(r_out.numpy(), tuple(r.numpy() for r in r_final), cache)
    _close(dx, x.grad.numpy(), "dx")
    for a, b, name in zip(d_state0, states, ("dh0", "dc0")):
        _close(a, b.grad.numpy(), name)
    assert grads.keys() == params.keys()
    for name, p in module.named_parameters():
        _close(grads[name], p.grad.numpy(), name)


# --------------------------------------------------------------------------- 3. the fast layers

@st.composite
def layer_cases(draw):
    """A random stack and batch: shapes, lengths (0..T, or None), an initial state or zeros, a seed."""
    T, N = draw(st.integers(1, 40)), draw(st.integers(1, 4))  # T up to 40: past the fast layer's chunks of 16
    lengths = draw(st.none() | st.lists(st.integers(0, T), min_size=N, max_size=N))
    return dict(cell=draw(st.sampled_from(CELLS)), layers=draw(st.integers(1, 2)),
                bidirectional=draw(st.booleans()), T=T, N=N, D=draw(st.integers(1, 4)),
                H=draw(st.integers(1, 4)), lengths=lengths, with_state=draw(st.booleans()),
                seed=draw(st.integers(0, 2**16)))


def _fast_against_reference(cell, layers, bidirectional, T, N, D, H, lengths, with_state, seed,
                            dtype=np.float64, tol=TOL64):
    """Run StackedRecurrent (dtype) and the reference (float64, same values) forward and backward; compare all."""
    rng = np.random.default_rng(seed)
    K = 2 if bidirectional else 1
    params = _stack_params(cell, D, H, layers, K, rng, dtype)
    x = rng.normal(size=(N, T, D)).astype(dtype)
    state = _states(cell, (layers * K, N, H), rng, dtype) if with_state else None
    d_out, d_final = rng.normal(size=(N, T, K * H)).astype(dtype), _states(cell, (layers * K, N, H), rng, dtype)
    lengths = None if lengths is None else np.array(lengths)
    as64 = lambda arrays: tuple(a.astype(np.float64) for a in arrays)  # noqa: E731

    params64 = {k: v.astype(np.float64) for k, v in params.items()}
    state64 = None if state is None else as64(state)
    expected, expected_final, cache = ref.stack_forward(cell, x.astype(np.float64), params64, layers, bidirectional,
                                                        state64, lengths)
    e_dx, e_dstate0, e_grads = ref.stack_backward(d_out.astype(np.float64), as64(d_final), cache)

    fast = StackedRecurrent(cell, params, "", layers, bidirectional)
    single = (lambda s: s) if cell == "lstm" else (lambda s: None if s is None else s[0])
    out, final = fast.forward(_time_major(x), lengths, single(state))
    _close(out.transpose(1, 0, 2), expected, "outputs", tol)
    for a, b, name in zip(final if cell == "lstm" else (final,), expected_final, ("h_n", "c_n")):
        _close(a, b, name, tol)
    dx, d_state0 = fast.backward(_time_major(d_out), single(d_final))
    assert dx.dtype == dtype
    _close(dx.transpose(1, 0, 2), e_dx, "dx", tol)
    for a, b, name in zip(d_state0 if cell == "lstm" else (d_state0,), e_dstate0, ("dh0", "dc0")):
        _close(a, b, name, tol)
    grads = fast.named_gradients()
    assert grads.keys() == e_grads.keys()
    for name, g in grads.items():
        _close(g, e_grads[name], name, tol)


@settings(max_examples=60, deadline=None)
@given(layer_cases())
def test_fast_stacked_layer_equals_the_reference(case):
    _fast_against_reference(**case)


FIXED_CASES = [  # chunk boundaries (16), ragged and all-padded steps, a length 0, both directions
    dict(layers=1, bidirectional=False, T=16, N=3, D=3, H=4, lengths=None, with_state=True),
    dict(layers=1, bidirectional=False, T=33, N=4, D=2, H=3, lengths=[33, 16, 17, 1], with_state=False),
    dict(layers=1, bidirectional=True, T=20, N=3, D=3, H=2, lengths=[12, 0, 5], with_state=True),
    dict(layers=2, bidirectional=True, T=18, N=5, D=4, H=3, lengths=[18, 9, 1, 17, 16], with_state=True),
]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("case", FIXED_CASES)
def test_fast_stacked_layer_equals_the_reference_at_chunk_boundaries(cell, case):
    _fast_against_reference(cell=cell, seed=3, **case)


@pytest.mark.parametrize("cell", CELLS)
def test_fast_layer_in_float32_equals_the_float64_reference(cell):
    """The training precision: float32 rounding only (its sigmoid-as-tanh and fused gates change nothing else)."""
    _fast_against_reference(cell, 2, True, 24, 4, 5, 6, [24, 7, 1, 20], True, seed=4, dtype=np.float32, tol=TOL32)


@pytest.mark.parametrize("cell", CELLS)
def test_one_fast_direction_equals_the_reference(cell):
    """`Recurrent` on its own, time-major, over a padded batch and past a chunk boundary."""
    rng = np.random.default_rng(5)
    N, T, D, H = 4, 19, 3, 5
    p = _direction_params(cell, D, H, rng)
    x, state = rng.normal(size=(N, T, D)), _states(cell, (N, H), rng)
    lengths = np.array([19, 4, 0, 16])
    d_out, d_final = rng.normal(size=(N, T, H)), _states(cell, (N, H), rng)
    expected, expected_final, cache = ref.forward(cell, x, p, state, lengths)
    e_dx, e_dstate0, e_grads = ref.backward(d_out, d_final, cache)

    layer = Recurrent(cell, *(p[kind] for kind in ref.PARAM_KINDS))
    out, final = layer.forward(_time_major(x), lengths, state)
    _close(out.transpose(1, 0, 2), expected, "outputs")
    for a, b in zip(final, expected_final):
        _close(a, b, "final state")
    dx, d_state0 = layer.backward(_time_major(d_out), d_final)
    _close(dx.transpose(1, 0, 2), e_dx, "dx")
    for a, b in zip(d_state0, e_dstate0):
        _close(a, b, "initial state gradient")
    for kind in ref.PARAM_KINDS:
        _close(layer.grads[kind], e_grads[kind], kind)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=5), st.integers(0, 3))
def test_reverse_within_lengths_equals_the_fast_layers(lengths, extra):
    T = max(lengths) + extra
    if T == 0:
        return
    x = np.arange(len(lengths) * T * 2).reshape(len(lengths), T, 2)
    reversed_ = ref.reverse_within_lengths(x, lengths)
    np.testing.assert_array_equal(reversed_, fast_reverse_within_lengths(_time_major(x), lengths).transpose(1, 0, 2))
    np.testing.assert_array_equal(ref.reverse_within_lengths(reversed_, lengths), x)


def test_reference_refuses_wrong_shapes_naming_them():
    rng = np.random.default_rng(0)
    p = _direction_params("lstm", 3, 2, rng)
    with pytest.raises(ValueError, match=r"weight_ih .* must be \(8, 4\); got \(8, 3\)"):
        ref.forward("lstm", rng.normal(size=(2, 5, 4)), p)
    with pytest.raises(ValueError, match="lengths"):
        ref.forward("lstm", rng.normal(size=(2, 5, 3)), p, lengths=[6, 1])
    with pytest.raises(ValueError, match="state"):
        ref.forward("lstm", rng.normal(size=(2, 5, 3)), p, state=(np.zeros((2, 2)),))


# --------------------------------------------------------------------------- 4. the inference path

def _reference_many_to_one(config: ModelConfig, params, ids, lengths):
    """Logits (N, O) of a many-to-one model composed from the reference, one sequence's pooling at a time."""
    H = config.hidden_size
    x = params["embedding.weight"][ids]                                     # (N, T, E)
    outputs, _, _ = ref.stack_forward(config.cell, x, params, config.num_layers, config.bidirectional,
                                      lengths=lengths, prefix="rnn.")       # (N, T, K*H)
    features = []
    for out, length in zip(outputs, lengths):
        real = out[:length]                                                 # (length, K*H)
        last = real[-1] if not config.bidirectional else np.concatenate([real[-1, :H], real[0, H:]])
        pooled = {"last": [last], "mean": [real.mean(axis=0)], "max": [real.max(axis=0)],
                  "mean_max": [real.mean(axis=0), real.max(axis=0)]}[config.pooling]
        features.append(np.concatenate(pooled))
    return np.stack(features) @ params["head.weight"].T + params["head.bias"]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,bidirectional,pooling", [
    (1, False, "last"), (1, True, "last"), (2, True, "mean_max"), (2, False, "max"), (1, True, "mean")])
def test_inference_logits_equal_a_model_made_of_the_reference(cell, layers, bidirectional, pooling):
    config = ModelConfig(vocab_size=30, cell=cell, embedding_dim=5, hidden_size=4, num_layers=layers,
                         bidirectional=bidirectional, pooling=pooling, output_size=2)
    rng = np.random.default_rng(6)
    lengths = np.array([7, 3, 1, 7, 5, 3])
    ids = rng.integers(1, config.vocab_size, size=(len(lengths), 9))  # two columns wider than the longest
    ids[np.arange(9)[None, :] >= lengths[:, None]] = config.padding_idx
    for dtype, tol in ((np.float64, 1e-12), (np.float32, TOL32)):
        params = init_parameters(config, np.random.default_rng(7), dtype=dtype)
        expected = _reference_many_to_one(config, {k: v.astype(np.float64) for k, v in params.items()},
                                          ids, lengths)
        got = inference.many_to_one_logits(config, params, ids, lengths)
        assert got.dtype == dtype
        _close(got, expected, f"logits ({np.dtype(dtype).name})", tol)

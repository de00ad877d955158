"""The numpy engine's recurrent layers against torch.nn.RNN / LSTM / GRU with the same weights (float32, 1e-5).

Outputs, final states and the gradients of every weight, of the input and of
the initial state. Masked batches run torch on packed sequences, whose
semantics the engine's masks implement: each sequence stops at its own
length, and the reverse direction reads it reversed within that length.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from rnnkit.numpy_engine import cells  # noqa: E402
from rnnkit.numpy_engine.recurrent import StackedRecurrent  # noqa: E402

TOL = 1e-5
MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
CELL_MODULES = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}


def _close(actual, expected, what):
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected
    assert actual.dtype == np.float32, f"{what}: {actual.dtype}"
    np.testing.assert_allclose(actual, expected, atol=TOL, rtol=0, err_msg=what)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cell_step_equals_torch_cell(cell):
    torch.manual_seed(0)
    N, D, H = 5, 4, 6
    module = CELL_MODULES[cell](D, H)
    x = torch.randn(N, D)
    state = (torch.randn(N, H), torch.randn(N, H)) if cell == "lstm" else (torch.randn(N, H),)
    for s in (x, *state):
        s.requires_grad_(True)
    out = module(x, state if cell == "lstm" else state[0])
    out = out if isinstance(out, tuple) else (out,)
    upstream = [torch.randn(N, H) for _ in out]
    sum((o * u).sum() for o, u in zip(out, upstream)).backward()

    w = {k: getattr(module, k).detach().numpy() for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    spec = cells.CELLS[cell]
    xw = x.detach().numpy() @ w["weight_ih"].T + w["bias_ih"]
    new, cache = spec.step(xw, tuple(s.detach().numpy() for s in state), w["weight_hh"], w["bias_hh"])
    for ours, theirs in zip(new, out):
        _close(ours, theirs, "state")
    dxw, dhw, dprev = spec.step_backward(tuple(u.numpy() for u in upstream), cache, w["weight_hh"])
    _close(dxw @ w["weight_ih"], x.grad, "dx")
    _close(dxw.T @ x.detach().numpy(), module.weight_ih.grad, "weight_ih")
    _close(dhw.T @ state[0].detach().numpy(), module.weight_hh.grad, "weight_hh")
    _close(dxw.sum(0), module.bias_ih.grad, "bias_ih")
    _close(dhw.sum(0), module.bias_hh.grad, "bias_hh")
    for ours, theirs in zip(dprev, state):
        _close(ours, theirs.grad, "initial state")


CASES = [  # layers, bidirectional, lengths (None: every step real), T, N, D, H
    (1, False, None, 9, 4, 5, 6),
    (1, False, [9, 3, 1, 6], 9, 4, 5, 6),
    (1, True, [5, 9, 9, 2], 9, 4, 5, 6),
    (2, True, None, 7, 3, 4, 5),
    (3, True, [7, 1, 4], 7, 3, 4, 5),
    (2, False, [40, 17, 33, 40, 1], 40, 5, 16, 24),
]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers,bidirectional,lengths,T,N,D,H", CASES)
def test_stacked_layer_equals_torch(cell, layers, bidirectional, lengths, T, N, D, H):
    torch.manual_seed(1)
    K = 2 if bidirectional else 1
    module = MODULES[cell](D, H, num_layers=layers, bidirectional=bidirectional)
    x = torch.randn(T, N, D, requires_grad=True)
    h0 = torch.randn(layers * K, N, H, requires_grad=True)
    c0 = torch.randn(layers * K, N, H, requires_grad=True)
    state = (h0, c0) if cell == "lstm" else h0
    lengths_t = torch.full((N,), T) if lengths is None else torch.tensor(lengths)
    mask = (torch.arange(T)[:, None] < lengths_t[None, :]).float()[:, :, None]  # (T, N, 1)

    if lengths is None:
        out, final = module(x, state)
    else:
        packed = pack_padded_sequence(x, lengths_t, enforce_sorted=False)
        out, final = module(packed, state)
        out, _ = pad_packed_sequence(out, total_length=T)
    finals = final if isinstance(final, tuple) else (final,)
    r_out = torch.randn(T, N, K * H) * mask  # padded steps are not outputs of the packed run
    r_final = [torch.randn(f.shape) for f in finals]
    loss = (out * r_out).sum() + sum((f * r).sum() for f, r in zip(finals, r_final))
    loss.backward()

    params = {name: p.detach().numpy().copy() for name, p in module.named_parameters()}
    stack = StackedRecurrent(cell, params, "", layers, bidirectional)
    np_state = (h0.detach().numpy(), c0.detach().numpy()) if cell == "lstm" else h0.detach().numpy()
    np_lengths = None if lengths is None else np.array(lengths)
    np_out, np_final = stack.forward(x.detach().numpy(), np_lengths, np_state)
    m = mask.numpy()
    _close(np_out * m, out * mask, "outputs")
    np_finals = np_final if isinstance(np_final, tuple) else (np_final,)
    for ours, theirs, name in zip(np_finals, finals, ("h_n", "c_n")):
        _close(ours, theirs, name)

    r_final_np = tuple(r.numpy() for r in r_final)
    dx, dstate0 = stack.backward(r_out.numpy(), r_final_np if cell == "lstm" else r_final_np[0])
    _close(dx, x.grad, "dx")
    dstates = dstate0 if isinstance(dstate0, tuple) else (dstate0,)
    for ours, theirs, name in zip(dstates, (h0, c0), ("dh0", "dc0")):
        _close(ours, theirs.grad, name)
    grads = stack.named_gradients()
    assert grads.keys() == dict(module.named_parameters()).keys()
    for name, p in module.named_parameters():
        _close(grads[name], p.grad, name)


def test_outputs_are_real_numbers_not_just_shapes():
    """A fixed 1-step, 1-unit LSTM by hand: catches a wrong gate order, which shapes never would."""
    module = torch.nn.LSTM(1, 1)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor([[1.0], [2.0], [3.0], [4.0]]))  # i, f, g, o
        module.weight_hh_l0.zero_()
        module.bias_ih_l0.zero_()
        module.bias_hh_l0.zero_()
    params = {name: p.detach().numpy().copy() for name, p in module.named_parameters()}
    out, (h, c) = StackedRecurrent("lstm", params, "", 1, False).forward(np.full((1, 1, 1), 0.5, np.float32))
    s = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    c_expected = s(0.5) * np.tanh(1.5)  # i g; c_prev = 0
    np.testing.assert_allclose(c[0, 0, 0], c_expected, rtol=1e-6)
    np.testing.assert_allclose(out[0, 0, 0], s(2.0) * np.tanh(c_expected), rtol=1e-6)
    torch_out, _ = module(torch.full((1, 1, 1), 0.5))
    np.testing.assert_allclose(out, torch_out.detach().numpy(), atol=1e-7)


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_bag_of_words_model_equals_torch_in_float64(padding):
    """The one_to_one model (--model bow) on both engines with the same float64 weights: logits and every
    parameter's gradient to 1e-12, and the numpy engine's inference path (`bag_of_words_logits`) too."""
    from rnnkit.config import ModelConfig
    from rnnkit.numpy_engine import build_model as build_numpy, inference
    from rnnkit.torch_engine import build_model as build_torch

    config = ModelConfig(vocab_size=20, architecture="one_to_one", embedding_dim=6, hidden_size=5, output_size=3)
    torch.manual_seed(2)
    torch_model = build_torch(config).double().eval()
    params = {name: p.detach().numpy().copy() for name, p in torch_model.shared_parameters().items()}
    numpy_model = build_numpy(config, params)
    rng = np.random.default_rng(3)
    lengths = np.array([7, 3, 1, 5])
    ids = rng.integers(1, 20, size=(4, 7))
    for row, n in enumerate(lengths):
        if padding == "post":
            ids[row, n:] = 0
        else:
            ids[row, :7 - n] = 0
    given = lengths if padding == "post" else np.full(4, 7)  # pre-padded: the padding's id marks it

    logits_t = torch_model(torch.from_numpy(ids), torch.from_numpy(given))
    logits_n = numpy_model.forward(ids, given)
    assert logits_n.dtype == np.float64
    np.testing.assert_allclose(logits_n, logits_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(inference.bag_of_words_logits(config, params, ids, given), logits_n,
                               rtol=1e-12, atol=1e-14)
    # a bag of words ignores the order of the words
    shuffled = ids[:, rng.permutation(7)] if padding == "pre" else ids
    np.testing.assert_allclose(numpy_model.forward(shuffled, given), logits_n, rtol=1e-12, atol=1e-14)

    upstream = rng.standard_normal(logits_n.shape)
    (logits_t * torch.from_numpy(upstream)).sum().backward()
    grads = numpy_model.backward(upstream)
    expected = {n: p.grad.numpy() for n, p in torch_model.shared_parameters().items()}
    assert grads.keys() == expected.keys()
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, expected[name], rtol=1e-12, atol=1e-14, err_msg=name)

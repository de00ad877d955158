"""`blas.Overlap`: a layer's chunk matmuls on a helper thread beside its steps, with the same results."""

import threading

import numpy as np
import pytest

from rnnkit.numpy_engine import blas
from rnnkit.numpy_engine.recurrent import CHUNK, StackedRecurrent


@pytest.fixture(params=[False, True], ids=["one_thread", "two_threads"])
def parallel(request, monkeypatch):
    """Overlap enabled or not, whatever the machine's cores (a one-core CI box has one BLAS thread)."""
    monkeypatch.setattr(blas, "get_threads", lambda: 2 if request.param else 1)
    return request.param


def test_overlap_runs_jobs_in_order_on_the_helper_when_parallel(parallel):
    order, threads = [], set()

    def job(i):
        order.append(i)
        threads.add(threading.current_thread().name)
        return i * i

    with blas.Overlap() as overlap:
        jobs = [overlap.run(job, i) for i in range(5)]
        assert jobs[3].result() == 9
    assert order == list(range(5))
    assert all(job.done() for job in jobs)
    assert any(name.startswith("rnnkit-blas") for name in threads) == parallel


def test_overlap_raises_a_helper_error_nobody_waited_for(parallel):
    def boom():
        raise ValueError("from the helper")

    with pytest.raises(ValueError, match="from the helper"):
        with blas.Overlap() as overlap:
            overlap.run(boom)


def test_overlap_disabled_runs_at_once(parallel):
    with blas.Overlap(enabled=False) as overlap:
        assert not overlap.parallel
        assert overlap.run(lambda: 5).result() == 5


def _run(cell, parallel_flag, monkeypatch):
    monkeypatch.setattr(blas, "get_threads", lambda: 2 if parallel_flag else 1)
    rng = np.random.default_rng(0)
    T, N, D, H, G = 3 * CHUNK + 5, 4, 3, 5, {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    params = {}
    for layer in range(2):
        for suffix in ("", "_reverse"):
            d_in = D if layer == 0 else 2 * H
            params[f"weight_ih_l{layer}{suffix}"] = rng.standard_normal((G * H, d_in)) * 0.4
            params[f"weight_hh_l{layer}{suffix}"] = rng.standard_normal((G * H, H)) * 0.4
            params[f"bias_ih_l{layer}{suffix}"] = rng.standard_normal(G * H) * 0.1
            params[f"bias_hh_l{layer}{suffix}"] = rng.standard_normal(G * H) * 0.1
    stack = StackedRecurrent(cell, params, "", 2, True)
    x = rng.standard_normal((T, N, D))
    lengths = np.array([T, T - 7, CHUNK + 1, 2])  # ragged, across chunk edges
    out, final = stack.forward(x, lengths)
    out = out.copy()
    dx, dstate = stack.backward(rng.standard_normal(out.shape))
    grads = {k: v.copy() for k, v in stack.named_gradients().items()}
    return out, dx, grads


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_overlapped_layer_computes_what_the_sequential_one_does(cell, monkeypatch):
    """float64, ragged lengths, two bidirectional layers, T over three chunks: the same numbers either way."""
    out_1, dx_1, grads_1 = _run(cell, False, monkeypatch)
    out_2, dx_2, grads_2 = _run(cell, True, monkeypatch)
    np.testing.assert_allclose(out_2, out_1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx_2, dx_1, rtol=0, atol=1e-12)
    for name in grads_1:
        np.testing.assert_allclose(grads_2[name], grads_1[name], rtol=0, atol=1e-11, err_msg=name)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_overlap_works_in_a_forked_child(monkeypatch):
    """A fork copies the helper executor but not its thread: the child must start its own, not wait forever."""
    import os

    monkeypatch.setattr(blas, "get_threads", lambda: 2)
    with blas.Overlap() as overlap:
        assert overlap.run(lambda: 1).result() == 1  # the parent's helper thread exists now
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the helper ran the job
        code = 1
        try:
            with blas.Overlap() as overlap:
                code = 0 if overlap.run(lambda: 7).result() == 7 else 1
        finally:
            os._exit(code)
    import signal
    import time

    deadline = time.monotonic() + 120  # a bound on a failure only: a broken child waits forever
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's Overlap job never ran")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0

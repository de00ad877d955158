"""numpy's BLAS thread control (`rnnkit.numpy_engine.blas`): one thread for the steps, --threads for the rest."""

import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from rnnkit.numpy_engine import blas  # noqa: E402


def _numpy_blas_threads() -> list[int]:
    return [lib.get_num_threads() for lib in blas._numpy_blas()]


@pytest.fixture
def restore_threads():
    before = _numpy_blas_threads()
    yield
    for lib, count in zip(blas._numpy_blas(), before):
        lib.set_num_threads(count)


def test_numpy_blas_is_found():
    assert blas._numpy_blas(), "threadpoolctl found no BLAS linked to numpy"


def test_set_threads_sets_every_numpy_blas_and_single_threaded_restores_it(restore_threads):
    many = max(_numpy_blas_threads())  # BLAS's default: the cores it found (1 on a one-core machine)
    blas.set_threads(many)
    assert set(_numpy_blas_threads()) == {many}
    with blas.single_threaded():
        assert set(_numpy_blas_threads()) == {1}
    assert set(_numpy_blas_threads()) == {many}
    blas.set_threads(1)
    assert set(_numpy_blas_threads()) == {1}


def test_set_threads_refuses_fewer_than_one():
    with pytest.raises(ValueError, match="at least 1"):
        blas.set_threads(0)


def test_numpy_training_with_threads_sets_blas(restore_threads):
    import numpy as np

    from rnnkit.config import ModelConfig, TrainConfig
    from rnnkit.numpy_engine import build_model
    from rnnkit.training.backends import make_backend

    model = build_model(ModelConfig(vocab_size=9, hidden_size=3, embedding_dim=2), rng=np.random.default_rng(0))
    make_backend(model, TrainConfig(threads=1))
    assert set(_numpy_blas_threads()) == {1}

"""The numpy engine's inference-only path (`inference`, `packing`) against the training forward.

`ManyToOne.infer` must give the logits of `ManyToOne.forward(train=False)`
for every cell, depth, direction and pooling, in the batch's own order,
whatever the lengths; the packing it rests on is checked on its own.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.config import ModelConfig
from rnnkit.numpy_engine import build_model
from rnnkit.numpy_engine.packing import max_over_steps, pack, pack_ids, sum_over_steps

TOL = 1e-5


def _batch(vocab_size: int, lengths, width: int | None = None, seed: int = 1):
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths, dtype=np.int64)
    ids = rng.integers(1, vocab_size, size=(len(lengths), width or int(lengths.max())))
    ids[np.arange(ids.shape[1])[None, :] >= lengths[:, None]] = 0  # post-padding
    return ids, lengths


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional,layers,pooling", [
    (False, 1, "last"), (True, 1, "last"), (True, 2, "mean_max"), (False, 3, "max"), (True, 2, "mean"),
    (False, 2, "mean_max")])
def test_infer_matches_the_training_forward(cell, bidirectional, layers, pooling):
    config = ModelConfig(vocab_size=40, cell=cell, embedding_dim=7, hidden_size=6, num_layers=layers,
                         bidirectional=bidirectional, pooling=pooling, output_size=2)
    model = build_model(config, rng=np.random.default_rng(0))
    ids, lengths = _batch(config.vocab_size, [9, 4, 1, 7, 9, 2, 4], width=12)  # ties, a 1, extra padding
    expected = model.forward(ids, lengths, train=False)
    got = model.infer(ids, lengths)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)


def test_infer_of_one_sequence_and_of_a_sorted_batch_agree():
    config = ModelConfig(vocab_size=30, cell="gru", embedding_dim=5, hidden_size=4, bidirectional=True,
                         num_layers=2, pooling="mean_max")
    model = build_model(config, rng=np.random.default_rng(3))
    ids, lengths = _batch(config.vocab_size, [3, 8, 5])
    together = model.infer(ids, lengths)
    alone = np.concatenate([model.infer(ids[i:i + 1, :lengths[i]], lengths[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, alone, atol=TOL, rtol=0)


def test_infer_in_float64_matches_to_high_precision():
    config = ModelConfig(vocab_size=20, cell="lstm", embedding_dim=4, hidden_size=3, bidirectional=True,
                         pooling="mean_max")
    params = {k: v.astype(np.float64) for k, v in build_model(config, rng=np.random.default_rng(5)).params.items()}
    model = build_model(config, params)
    ids, lengths = _batch(config.vocab_size, [6, 2, 6, 1])
    np.testing.assert_allclose(model.infer(ids, lengths), model.forward(ids, lengths, train=False),
                               atol=1e-12, rtol=0)


@pytest.mark.parametrize("lengths,width", [([0, 3], 3), ([4], 3)])
def test_infer_refuses_lengths_outside_the_padded_width(lengths, width):
    model = build_model(ModelConfig(vocab_size=9, hidden_size=3, embedding_dim=2), rng=np.random.default_rng(0))
    ids = np.ones((len(lengths), width), dtype=np.int64)
    with pytest.raises(ValueError, match="length"):
        model.infer(ids, np.array(lengths))


def test_infer_of_an_empty_batch_is_empty():
    model = build_model(ModelConfig(vocab_size=9, hidden_size=3, embedding_dim=2, output_size=2),
                        rng=np.random.default_rng(0))
    assert model.infer(np.zeros((0, 4), dtype=np.int64), np.zeros(0, dtype=np.int64)).shape == (0, 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=8))
def test_packing_lays_out_every_real_step_once(lengths):
    lengths = np.array(lengths)
    packing = pack(lengths)
    assert packing.total == lengths.sum()
    assert list(packing.lengths) == sorted(lengths.tolist(), reverse=True)
    assert (lengths[packing.order] == packing.lengths).all()
    # step t holds the sequences longer than t, a prefix of the sorted order
    assert packing.sizes == [int((lengths > t).sum()) for t in range(lengths.max())]
    assert sorted(packing.reverse.tolist()) == list(range(packing.total))  # a permutation ...
    assert (packing.reverse[packing.reverse] == np.arange(packing.total)).all()  # ... its own inverse
    ids, _ = _batch(50, lengths, seed=int(lengths.sum()))
    flat = pack_ids(ids, packing)
    sorted_ids = ids[packing.order]
    for i, length in enumerate(packing.lengths):  # each sequence's steps, in order, from its packed rows
        rows = [packing.offsets[t] + i for t in range(length)]
        assert (flat[rows] == sorted_ids[i, :length]).all()
        assert packing.last[i] == rows[-1]
        assert (flat[packing.reverse[rows]] == sorted_ids[i, :length][::-1]).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=6))
def test_pooled_sums_and_maxima_over_packed_steps(lengths):
    lengths = np.array(lengths)
    packing = pack(lengths)
    rng = np.random.default_rng(len(lengths))
    padded = rng.standard_normal((2, len(lengths), lengths.max(), 3))  # (K, N, T, H), sorted order
    packed = np.empty((2, packing.total, 3))
    for i, length in enumerate(packing.lengths):
        for t in range(length):
            packed[:, packing.offsets[t] + i] = padded[:, i, t]
    real = np.arange(lengths.max())[None, :, None] < packing.lengths[:, None, None]
    np.testing.assert_allclose(sum_over_steps(packed, packing), np.where(real, padded, 0).sum(axis=2))
    np.testing.assert_allclose(max_over_steps(packed, packing), np.where(real, padded, -np.inf).max(axis=2))


def test_prepared_layers_give_the_same_logits():
    from rnnkit.numpy_engine import inference

    config = ModelConfig(vocab_size=30, cell="lstm", embedding_dim=5, hidden_size=4, bidirectional=True,
                         num_layers=2, pooling="mean_max")
    model = build_model(config, rng=np.random.default_rng(4))
    ids, lengths = _batch(config.vocab_size, [5, 3, 7])
    layers = inference.prepare_layers(config, model.params)
    assert len(layers) == 2
    np.testing.assert_array_equal(inference.many_to_one_logits(config, model.params, ids, lengths, layers),
                                  model.infer(ids, lengths))


@pytest.mark.parametrize("cell,gates", [("rnn", 1), ("lstm", 4), ("gru", 3)])
@pytest.mark.parametrize("directions", [1, 2])
def test_one_sequence_path_matches_the_packed_steps(cell, gates, directions):
    """`run_layer` at batch 1 (`recur_one` for one direction: flat weights, views made once) gives what the
    packed steps give, in float64."""
    from rnnkit.numpy_engine import inference as fast
    from rnnkit.numpy_engine.packing import pack

    rng = np.random.default_rng(3)
    H, D, S = 5, 3, 23
    params = {}
    for k in range(directions):
        suffix = "_reverse" if k else ""
        params[f"rnn.weight_ih_l0{suffix}"] = rng.standard_normal((gates * H, D))
        params[f"rnn.weight_hh_l0{suffix}"] = rng.standard_normal((gates * H, H))
        params[f"rnn.bias_ih_l0{suffix}"] = rng.standard_normal(gates * H)
        params[f"rnn.bias_hh_l0{suffix}"] = rng.standard_normal(gates * H)
    weights = fast.layer_weights(cell, params, "rnn.", 0, directions)
    inputs = [rng.standard_normal((S, D)) for _ in range(directions)]
    packed = fast.recur(cell, fast.project(inputs, weights), weights, pack(np.array([S])))
    if directions == 1:
        np.testing.assert_allclose(fast.recur_one(cell, inputs[0], weights), packed, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.run_layer(cell, inputs, weights, pack(np.array([S]))), packed, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_input_table_gives_the_projected_logits(cell, bidirectional):
    """Batches scored through the first layer's table (frequent ids looked up, rare ones projected) give
    the logits of the plain path, before and after the table is built."""
    from rnnkit.numpy_engine import inference
    from rnnkit.numpy_engine.input_table import InputTable

    config = ModelConfig(vocab_size=50, cell=cell, embedding_dim=6, hidden_size=5, num_layers=2,
                         bidirectional=bidirectional, pooling="mean_max", output_size=3)
    params = {k: v.astype(np.float64) for k, v in build_model(config, rng=np.random.default_rng(0)).params.items()}
    layers = inference.prepare_layers(config, params)
    row_bytes = config.num_directions * {"lstm": 4, "gru": 3}[cell] * 5 * 8
    table = InputTable(params["embedding.weight"], layers[0], budget_bytes=20 * row_bytes)  # ids >= 20 are rare
    assert table.rows == 20
    rng = np.random.default_rng(1)
    for _ in range(4):  # the table is built during the second batch (S >= 20 tokens seen)
        lengths = rng.integers(1, 9, size=5)
        ids = np.where(np.arange(8)[None, :] < lengths[:, None], rng.integers(2, 50, size=(5, 8)), 0)
        want = inference.many_to_one_logits(config, params, ids, lengths, layers)
        got = inference.many_to_one_logits(config, params, ids, lengths, layers, table)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert table.table is not None and table.table.shape[2] == 20


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=20), st.sampled_from(["rnn", "lstm", "gru"]),
       st.booleans())
def test_infer_of_any_batch_matches_the_training_forward_in_float64(lengths, cell, bidirectional):
    """Every batch size and mix of lengths, runs in blocks (up to 16 sequences) and on views (more): the
    rows a step computes past n (`inference.padded`: zeros, the next step's rows or finished sequences')
    change no real output."""
    config = ModelConfig(vocab_size=20, cell=cell, embedding_dim=4, hidden_size=3, bidirectional=bidirectional,
                         num_layers=2, pooling="mean_max")
    params = {k: v.astype(np.float64) for k, v in build_model(config, rng=np.random.default_rng(7)).params.items()}
    model = build_model(config, params)
    ids, lengths = _batch(config.vocab_size, lengths, seed=len(lengths))
    np.testing.assert_allclose(model.infer(ids, lengths), model.forward(ids, lengths, train=False),
                               atol=1e-12, rtol=0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_runs_in_blocks_and_on_views_hand_the_state_on(cell):
    """A batch whose runs cross `BLOCKS_UP_TO` both ways: 20 sequences (views), then 17, 9, 3 and 1 still
    running (blocks), and an even 16 that blocks pad to no extra rows; every real output in float64."""
    from rnnkit.numpy_engine import inference

    assert inference.BLOCKS_UP_TO == 16  # the lengths below are chosen around it
    config = ModelConfig(vocab_size=20, cell=cell, embedding_dim=4, hidden_size=3, bidirectional=True,
                         num_layers=2, pooling="mean_max")
    params = {k: v.astype(np.float64) for k, v in build_model(config, rng=np.random.default_rng(9)).params.items()}
    model = build_model(config, params)
    lengths = [2] * 3 + [4] * 8 + [5] * 6 + [6] * 2 + [9]  # runs of n = 20, 17, 9, 3, 1
    ids, lengths = _batch(config.vocab_size, lengths, seed=4)
    np.testing.assert_allclose(model.infer(ids, lengths), model.forward(ids, lengths, train=False),
                               atol=1e-12, rtol=0)
    ids, lengths = _batch(config.vocab_size, [7] * 16, seed=5)
    np.testing.assert_allclose(model.infer(ids, lengths), model.forward(ids, lengths, train=False),
                               atol=1e-12, rtol=0)


def test_blocks_kept_between_calls_and_threads_carry_nothing_over():
    """`_run_in_blocks` keeps its buffers per thread between calls: a longer batch, then a shorter one, then
    the first again, each alone and from two threads at once, give the training forward's logits."""
    from concurrent.futures import ThreadPoolExecutor

    config = ModelConfig(vocab_size=30, cell="lstm", embedding_dim=4, hidden_size=5, bidirectional=True,
                         num_layers=2, pooling="mean_max")
    params = {k: v.astype(np.float64) for k, v in build_model(config, rng=np.random.default_rng(11)).params.items()}
    model = build_model(config, params)
    batches = [_batch(config.vocab_size, lengths, seed=seed)
               for seed, lengths in enumerate([[9, 7, 7, 3, 12, 5], [2, 4, 3], [6] * 10 + [1, 8]])]
    expected = [model.forward(ids, lengths, train=False) for ids, lengths in batches]
    for (ids, lengths), want in zip(batches + batches[:1], expected + expected[:1]):
        np.testing.assert_allclose(model.infer(ids, lengths), want, atol=1e-12, rtol=0)
    with ThreadPoolExecutor(2) as pool:
        for _ in range(40):  # a workspace shared between threads fails this most runs
            results = list(pool.map(lambda b: model.infer(*b), batches))
            for got, want in zip(results, expected):
                np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)

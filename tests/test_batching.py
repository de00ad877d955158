import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.data.batching import bucket_batches, iterate_batches, pad_batch, truncate
from rnnkit.errors import ConfigError


def test_truncate_pre_keeps_the_end_and_post_keeps_the_start():
    assert truncate([1, 2, 3, 4], 2, "pre") == [3, 4]
    assert truncate([1, 2, 3, 4], 2, "post") == [1, 2]
    assert truncate([1, 2], 5) == [1, 2]


def test_pad_batch_post_and_pre():
    ids, lengths = pad_batch([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    ids, _ = pad_batch([[5, 6, 7], [8]], padding="pre", length=4)
    assert ids.tolist() == [[0, 5, 6, 7], [0, 0, 0, 8]]


def test_pad_batch_refuses_empty_and_too_long():
    with pytest.raises(ConfigError, match="empty"):
        pad_batch([[1], []])
    with pytest.raises(ConfigError, match="truncate"):
        pad_batch([[1, 2, 3]], length=2)


@given(st.lists(st.integers(1, 60), min_size=1, max_size=300), st.integers(1, 17), st.integers(0, 3))
def test_bucketing_covers_every_index_once_with_low_padding(lengths, batch_size, seed):
    lengths = np.asarray(lengths)
    batches = bucket_batches(lengths, batch_size, np.random.default_rng(seed))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    sorted_batches = bucket_batches(lengths, batch_size, None)
    padded = sum(len(b) * lengths[b].max() for b in sorted_batches)
    assert padded <= sum(len(b) * lengths.max() for b in sorted_batches)


def test_bucketed_batches_have_less_padding_than_random_ones():
    rng = np.random.default_rng(0)
    seqs = [np.ones(n, dtype=np.int64) for n in rng.integers(5, 500, size=2000)]
    labels = np.zeros(2000)
    def padding(bucket):
        return sum(b.ids.size - b.lengths.sum() for b in iterate_batches(seqs, labels, 32, np.random.default_rng(1), bucket))
    assert padding(True) < 0.2 * padding(False)


def test_iterate_batches_is_deterministic_for_a_seed():
    seqs = [np.arange(1, n + 1) for n in range(1, 50)]
    a = [b.index.tolist() for b in iterate_batches(seqs, None, 8, np.random.default_rng(3))]
    b = [b.index.tolist() for b in iterate_batches(seqs, None, 8, np.random.default_rng(3))]
    assert a == b

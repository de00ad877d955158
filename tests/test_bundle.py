import json
import os
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.bundle import FORMAT_VERSION, load_bundle, save_bundle
from rnnkit.config import ModelConfig
from rnnkit.data.vocab import Vocab
from rnnkit.errors import BundleError
from rnnkit.params import parameter_shapes


def _tensors(config, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in parameter_shapes(config).items()}


def _vocab(n):
    return Vocab(("<pad>", "<unk>", *[f"w{i}" for i in range(n - 2)])).to_json()


@pytest.fixture
def bundle_dir(tmp_path):
    config = ModelConfig(vocab_size=12, embedding_dim=4, hidden_size=3, cell="lstm", bidirectional=True)
    save_bundle(tmp_path / "b", "sentiment", config, _vocab(12), _tensors(config), settings={"maxlen": 9})
    return tmp_path / "b", config


def test_round_trip_is_exact(bundle_dir):
    path, config = bundle_dir
    bundle = load_bundle(path)
    assert bundle.config == config and bundle.task == "sentiment" and bundle.settings == {"maxlen": 9}
    for name, value in _tensors(config).items():
        np.testing.assert_array_equal(bundle.tensors[name], value)


@settings(max_examples=15, deadline=None)
@given(cell=st.sampled_from(["rnn", "lstm", "gru"]), layers=st.integers(1, 3), bi=st.booleans(),
       hidden=st.integers(1, 5), pooling=st.sampled_from(["last", "max", "mean", "mean_max"]))
def test_round_trip_any_config(tmp_path_factory, cell, layers, bi, hidden, pooling):
    config = ModelConfig(vocab_size=7, cell=cell, num_layers=layers, bidirectional=bi, hidden_size=hidden,
                         embedding_dim=3, pooling=pooling)
    path = tmp_path_factory.mktemp("b")
    save_bundle(path, "sentiment", config, _vocab(7), _tensors(config))
    loaded = load_bundle(path)
    assert loaded.config == config
    assert {k: v.shape for k, v in loaded.tensors.items()} == parameter_shapes(config)


def test_missing_directory_and_files_name_the_fix(bundle_dir, tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")
    path, _ = bundle_dir
    (path / "vocab.json").unlink()
    with pytest.raises(BundleError, match="vocab.json is missing"):
        load_bundle(path)


def test_newer_format_version_is_refused(bundle_dir):
    path, _ = bundle_dir
    doc = json.loads((path / "config.json").read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="upgrade rnnkit"):
        load_bundle(path)


def test_vocab_size_mismatch_is_refused(bundle_dir):
    path, _ = bundle_dir
    (path / "vocab.json").write_text(json.dumps(_vocab(11)))
    with pytest.raises(BundleError, match="do not belong together"):
        load_bundle(path)


def test_wrong_shapes_and_extra_tensors_are_refused(bundle_dir):
    from safetensors.numpy import save_file
    path, config = bundle_dir
    tensors = _tensors(config)
    tensors["head.weight"] = np.zeros((1, 5), np.float32)
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(BundleError, match="head.weight has shape"):
        load_bundle(path)
    tensors = _tensors(config)
    tensors["spy"] = np.zeros(1, np.float32)
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(BundleError, match="unexpected tensors \\['spy'\\]"):
        load_bundle(path)


class _Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_posing_as_weights_is_never_run(bundle_dir, tmp_path):
    path, _ = bundle_dir
    marker = tmp_path / "pwned"
    (path / "model.safetensors").write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(BundleError, match="never unpickles"):
        load_bundle(path)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "huge_header", "header_past_end", "garbage"])
def test_damaged_weights_give_a_typed_error_naming_the_file(bundle_dir, damage):
    path, _ = bundle_dir
    weights = path / "model.safetensors"
    data = weights.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "huge_header":
        data = (2**63 - 1).to_bytes(8, "little") + data[8:]
    elif damage == "header_past_end":
        data = (len(data) * 2).to_bytes(8, "little") + data[8:]
    else:
        data = os.urandom(200)
    weights.write_bytes(data)
    with pytest.raises(BundleError, match="model.safetensors"):
        load_bundle(path)


def test_save_refuses_mismatched_weights_and_leaves_old_bundle_intact(bundle_dir):
    path, config = bundle_dir
    before = (path / "model.safetensors").read_bytes()
    bad = _tensors(config)
    del bad["head.bias"]
    with pytest.raises(BundleError, match="missing tensors"):
        save_bundle(path, "sentiment", config, _vocab(12), bad)
    assert (path / "model.safetensors").read_bytes() == before
    assert not [p for p in path.iterdir() if "tmp" in p.name]


def test_a_failed_write_leaves_the_previous_file(tmp_path, monkeypatch):
    from rnnkit import fileio
    target = tmp_path / "f.json"
    fileio.atomic_write_text(target, "old")

    def full_disk(self, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(type(target), "write_bytes", full_disk)
    with pytest.raises(OSError):
        fileio.atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]

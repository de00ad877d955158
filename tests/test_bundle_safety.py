"""Bundles from strangers: pickles are never run, damaged files are refused before anything is allocated.

Every refusal is a BundleError naming the file and the problem, and `rnnkit predict`
turns it into one line on stderr and exit code 2 (no traceback).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from rnnkit.bundle import FORMAT_VERSION, load_bundle, save_bundle
from rnnkit.cli import main
from rnnkit.config import ModelConfig
from rnnkit.data.vocab import Vocab
from rnnkit.errors import BundleError
from rnnkit.params import parameter_shapes

CONFIG = ModelConfig(vocab_size=12, embedding_dim=4, hidden_size=3, cell="gru", bidirectional=True,
                     pooling="mean_max")
WORDS = ("good", "bad", "film", "great", "awful", "plot", "cast", "dull", "fun", "mess")


def tensors(seed=0, config=CONFIG):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in parameter_shapes(config).items()}


def write_bundle(path, seed=0):
    vocab = Vocab(("<pad>", "<unk>", *WORDS)).to_json()
    return save_bundle(path, "sentiment", CONFIG, vocab, tensors(seed), settings={"maxlen": 20})


@pytest.fixture
def bundle(tmp_path):
    return write_bundle(tmp_path / "bundle")


class Payload:
    """Unpickling this creates `marker` (any code could run in its place)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def assert_refused(path, *fragments):
    """load_bundle refuses with every fragment in the message, allocating next to nothing; so does the CLI."""
    tracemalloc.start()
    try:
        with pytest.raises(BundleError) as info:
            load_bundle(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert peak < 4 * 2**20, f"{peak} bytes allocated to refuse a tiny bundle"
    return message


def assert_cli_refuses(path, capsys, *fragments):
    assert main(["predict", str(path), "a good film"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


# --------------------------------------------------------------------------- pickles never run


def test_the_payload_is_live(tmp_path):
    """The planted pickle really would write its marker: unpickling it here (on purpose) does."""
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(Payload(marker))).close()
    assert marker.exists()


def _torch_zip(payload, path):
    torch = pytest.importorskip("torch")
    torch.save({"embedding.weight": torch.zeros(12, 4), "hook": payload}, path)


def _torch_legacy(payload, path):
    torch = pytest.importorskip("torch")
    torch.save({"hook": payload}, path, _use_new_zipfile_serialization=False)


PICKLE_WRITERS = {f"pickle_protocol_{p}": (lambda payload, path, p=p: path.write_bytes(pickle.dumps(payload, protocol=p)))
                  for p in range(pickle.HIGHEST_PROTOCOL + 1)}
PICKLE_WRITERS.update({"torch_save_zip": _torch_zip, "torch_save_legacy": _torch_legacy})


@pytest.mark.parametrize("kind", sorted(PICKLE_WRITERS))
@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "vocab.json"])
def test_a_planted_pickle_is_refused_and_never_run(bundle, tmp_path, capsys, kind, name):
    marker = tmp_path / "pwned"
    PICKLE_WRITERS[kind](Payload(marker), bundle / name)
    message = assert_refused(bundle, name)
    if name == "model.safetensors":
        assert "pickle" in message or "not a safetensors file" in message
    assert_cli_refuses(bundle, capsys, name)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["model.pt", "pytorch_model.bin", "model.pkl", "weights.ckpt"])
def test_pickles_under_other_names_are_never_opened(bundle, tmp_path, capsys, name):
    marker = tmp_path / "pwned"
    (bundle / name).write_bytes(pickle.dumps(Payload(marker)))
    assert load_bundle(bundle).config == CONFIG  # the bundle's own files are fine; the stranger is ignored
    (bundle / "model.safetensors").unlink()  # now the only weights around are the pickle
    assert_refused(bundle, "model.safetensors is missing", name, "never loads pickle")
    assert_cli_refuses(bundle, capsys, "never loads pickle")
    assert not marker.exists()


def test_a_pickle_as_a_training_checkpoint_is_refused(tmp_path):
    from rnnkit.errors import TrainingError
    from rnnkit.training.checkpoint import load_checkpoint

    marker = tmp_path / "pwned"
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    (tmp_path / "run" / "checkpoint" / "state.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(TrainingError, match="damaged"):
        load_checkpoint(tmp_path / "run", "torch")
    assert not marker.exists()


def test_a_pickle_as_the_imdb_cache_is_rebuilt_not_run(tmp_path, monkeypatch):
    from rnnkit.data import imdb
    from rnnkit.data.synthetic import write_imdb_layout

    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    tar = write_imdb_layout(tmp_path / "aclImdb_v1.tar.gz", per_split=10)
    first = imdb.load_corpus(tar, progress=False)
    (cache,) = (tmp_path / "cache").iterdir()
    marker = tmp_path / "pwned"
    (cache / "corpus.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    again = imdb.load_corpus(tar, progress=False)
    assert again.words == first.words and not marker.exists()


def test_a_real_bundle_whose_header_length_starts_like_a_pickle_loads(tmp_path):
    """A safetensors header of 1152 bytes starts with b"\\x80\\x04", like pickle protocol 4: still safetensors."""
    config = ModelConfig(vocab_size=5, cell="lstm", embedding_dim=128, hidden_size=25, num_layers=3)
    vocab = Vocab(("<pad>", "<unk>", "a", "b", "c")).to_json()
    path = save_bundle(tmp_path / "b", "sentiment", config, vocab, tensors(1, config))
    assert (path / "model.safetensors").read_bytes()[:2] == b"\x80\x04"
    assert load_bundle(path).config == config


# --------------------------------------------------------------------------- damaged weights


def _split(path):
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def _join(header, body, raw=None):
    raw = raw if raw is not None else json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + body


def _edit_header(edit):
    def damage(weights):
        header, body = _split(weights)
        edit(header)
        weights.write_bytes(_join(header, body))
    return damage


def _alias(header):  # two equal-sized tensors share one byte range (and one range is left to nobody)
    header["rnn.bias_hh_l0"]["data_offsets"] = header["rnn.bias_ih_l0"]["data_offsets"]


def _grow(header):
    header["head.weight"]["shape"] = [1, 13]


def _dtype(name):
    return _edit_header(lambda header: header["head.bias"].__setitem__("dtype", name))


def _duplicate(weights):
    header, body = _split(weights)
    first = json.dumps({"rnn.bias_ih_l0": header["rnn.bias_hh_l0"]})[1:-1]  # same name again, other bytes
    raw = json.dumps(header).encode()
    weights.write_bytes(_join(None, body, raw=b"{" + first.encode() + b", " + raw[1:]))


def _giant_claim(weights):  # a header promising a 4 TiB tensor, on a tiny file
    _, body = _split(weights)
    weights.write_bytes(_join({"embedding.weight": {"dtype": "F32", "shape": [2**20, 2**20],
                                                     "data_offsets": [0, 4 * 2**40]}}, body))


def _resave(change):
    def damage(weights):
        arrays = tensors()
        change(arrays)
        save_file(arrays, str(weights))
    return damage


def _other_save(weights):  # weights of another save of the same model: a bundle torn between two renames
    other = write_bundle(weights.parent.parent / "other", seed=7)
    shutil.copy(other / "model.safetensors", weights)


WEIGHT_DAMAGE = {
    "truncated_at_50_percent": (lambda w: w.write_bytes(w.read_bytes()[: w.stat().st_size // 2]), "truncated"),
    "header_length_2_63": (lambda w: w.write_bytes((2**63).to_bytes(8, "little") + w.read_bytes()[8:]),
                           "declares a 9223372036854775808-byte header"),
    "header_longer_than_file": (lambda w: w.write_bytes((w.stat().st_size).to_bytes(8, "little") + w.read_bytes()[8:]),
                                "truncated or damaged"),
    "overlapping_offsets": (_edit_header(_alias), "overlap"),
    "duplicate_keys": (_duplicate, "names tensor 'rnn.bias_ih_l0' twice"),
    "shape_x_dtype_not_byte_range": (_edit_header(_grow), "needs 52 bytes, but its byte range"),
    "dtype_f16": (_dtype("F16"), "dtype 'F16'"),
    "dtype_f64": (_dtype("F64"), "dtype 'F64'"),
    "dtype_i32": (_dtype("I32"), "dtype 'I32'"),
    "dtype_unknown": (_dtype("Q7"), "dtype 'Q7'"),
    "extra_tensor": (_resave(lambda a: a.__setitem__("spy", np.zeros(3, np.float32))), "unexpected tensors ['spy']"),
    "missing_tensor": (_resave(lambda a: a.pop("head.bias")), "missing tensors ['head.bias']"),
    "wrong_shape": (_resave(lambda a: a.__setitem__("head.weight", np.zeros((1, 5), np.float32))),
                    "head.weight has shape (1, 5)"),
    "nan_weights": (_resave(lambda a: a["rnn.weight_hh_l0"].__setitem__((0, 0), np.nan)), "NaN"),
    "trailing_bytes": (lambda w: w.write_bytes(w.read_bytes() + b"\0" * 16), "belong to no tensor"),
    "empty_file": (lambda w: w.write_bytes(b""), "too short"),
    "giant_tensor_claim": (_giant_claim, "take 4398046511104 bytes"),
    "header_not_an_object": (lambda w: w.write_bytes(_join(None, b"", raw=b"[1, 2, 3]   ")), "not a safetensors file"),
    "header_nested_deeply": (lambda w: w.write_bytes(_join(None, b"", raw=b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")),
                             "damaged header"),
    "header_not_utf8": (lambda w: w.write_bytes(_join(None, b"", raw=b'{"\xff\xfe": 1}')), "damaged header"),
    "random_bytes": (lambda w: w.write_bytes(np.random.default_rng(0).bytes(300)), "model.safetensors"),
    "torn_bundle": (_other_save, "SHA-256"),
}


@pytest.mark.parametrize("case", sorted(WEIGHT_DAMAGE))
def test_damaged_weights_are_refused_naming_file_and_problem(bundle, capsys, case):
    damage, fragment = WEIGHT_DAMAGE[case]
    damage(bundle / "model.safetensors")
    assert_refused(bundle, "model.safetensors", fragment)
    assert_cli_refuses(bundle, capsys, "model.safetensors", fragment)


# --------------------------------------------------------------------------- config and vocabulary


def _config_edit(edit):
    def damage(path):
        document = json.loads((path / "config.json").read_text())
        edit(document)
        (path / "config.json").write_text(json.dumps(document))
    return damage


def _vocab_edit(edit):
    def damage(path):
        document = json.loads((path / "vocab.json").read_text())
        edit(document)
        (path / "vocab.json").write_text(json.dumps(document))
    return damage


METADATA_DAMAGE = {
    "newer_format_version": (_config_edit(lambda d: d.update(format_version=FORMAT_VERSION + 1)), "config.json",
                             "upgrade rnnkit"),
    "format_version_zero": (_config_edit(lambda d: d.update(format_version=0)), "bundle", "unknown bundle format 0"),
    "format_version_not_int": (_config_edit(lambda d: d.update(format_version=True)), "config.json",
                               "no integer format_version"),
    "unknown_top_level_field": (_config_edit(lambda d: d.update(surprise=1)), "config.json",
                                "unknown fields ['surprise']"),
    "unknown_model_field": (_config_edit(lambda d: d["model"].update(heads=8)), "config.json", "unknown fields ['heads']"),
    "unknown_task": (_config_edit(lambda d: d.update(task="vision")), "config.json", "unknown task 'vision'"),
    "wrong_architecture": (_config_edit(lambda d: d["model"].update(cell="transformer")), "config.json", "cell must be"),
    "bidirectional_as_text": (_config_edit(lambda d: d["model"].update(bidirectional="no")), "config.json",
                              "bidirectional must be true or false"),
    "padding_idx_fraction": (_config_edit(lambda d: d["model"].update(padding_idx=1.5)), "config.json", "padding_idx"),
    "hidden_size_mismatch": (_config_edit(lambda d: d["model"].update(hidden_size=4)), "model.safetensors",
                             "the config needs"),
    "settings_not_object": (_config_edit(lambda d: d.update(settings=["maxlen"])), "config.json",
                            "'settings' must be an object"),
    "config_not_object": (lambda p: (p / "config.json").write_text("[1, 2]"), "config.json", "JSON object"),
    "config_not_json": (lambda p: (p / "config.json").write_text("{'model': 1"), "config.json", "not valid JSON"),
    "config_not_utf8": (lambda p: (p / "config.json").write_bytes(b'{"task": "\xff"}'), "config.json", "not UTF-8"),
    "config_nested_deeply": (lambda p: (p / "config.json").write_text("[" * 100_000), "config.json", "nested too deeply"),
    "vocab_size_not_embedding_rows": (_vocab_edit(lambda d: d["tokens"].pop()), "vocab.json", "do not belong together"),
    "vocab_without_tokens": (_vocab_edit(lambda d: d.pop("tokens")), "vocab.json", "no token list"),
    "vocab_edited_same_size": (_vocab_edit(lambda d: d["tokens"].__setitem__(2, "wonderful")), "vocab.json", "SHA-256"),
    "checksum_tampered": (_config_edit(lambda d: d["files"].update({"model.safetensors": "sha256:0"})),
                          "model.safetensors", "SHA-256"),
}


@pytest.mark.parametrize("case", sorted(METADATA_DAMAGE))
def test_metadata_mismatch_is_a_strict_refusal(bundle, capsys, case):
    damage, name, fragment = METADATA_DAMAGE[case]
    damage(bundle)
    assert_refused(bundle, name, fragment)
    assert_cli_refuses(bundle, capsys, name, fragment)


@pytest.mark.parametrize("name", ["config.json", "vocab.json", "model.safetensors"])
@pytest.mark.parametrize("problem,fragment", [("missing", "is missing"), ("directory", "is a directory, not a file"),
                                              ("fifo", "not a regular file")])
def test_missing_files_and_directories_where_files_belong(bundle, capsys, name, problem, fragment):
    (bundle / name).unlink()
    if problem == "directory":
        (bundle / name).mkdir()
    elif problem == "fifo":
        os.mkfifo(bundle / name)  # reading it would block for ever: never opened
    assert_refused(bundle, name, fragment)
    assert_cli_refuses(bundle, capsys, name, fragment)


def test_bundle_path_that_is_a_file_or_missing(bundle, capsys):
    assert_refused(bundle / "config.json", "is a file, but a bundle is a directory")
    assert_refused(bundle / "nowhere", "does not exist")
    assert_cli_refuses(bundle / "nowhere", capsys, "does not exist")


def test_the_command_itself_exits_2_with_one_line(bundle, tmp_path):
    marker = tmp_path / "pwned"
    (bundle / "model.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", "predict", str(bundle), "a good film"],
                          capture_output=True, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and "never unpickles" in err, err
    assert not marker.exists()


# --------------------------------------------------------------------------- saving never leaves a torn bundle


def test_save_refuses_what_it_could_not_load_back(bundle, tmp_path):
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    bad = tensors()
    bad["head.bias"][0] = np.inf
    with pytest.raises(BundleError, match="NaN or infinite"):
        save_bundle(bundle, "sentiment", CONFIG, Vocab(("<pad>", "<unk>", *WORDS)).to_json(), bad)
    with pytest.raises(BundleError, match="lone surrogate"):
        save_bundle(bundle, "sentiment", CONFIG, Vocab(("<pad>", "<unk>", *WORDS[:-1], "\ud800")).to_json(), tensors())
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before


def test_a_bundle_saved_again_replaces_all_three_files_together(bundle):
    write_bundle(bundle, seed=3)
    loaded = load_bundle(bundle)
    for name, value in tensors(3).items():
        np.testing.assert_array_equal(loaded.tensors[name], value)
    assert not [p for p in bundle.iterdir() if p.name.startswith(".")]


def test_an_empty_weights_dir_name_is_not_taken_for_a_bundle(tmp_path):
    Path(tmp_path / "b").mkdir()
    assert_refused(tmp_path / "b", "config.json is missing")


def test_saved_files_get_the_permissions_of_a_plain_write(tmp_path):
    """mkstemp makes 0600 files; a bundle must stay readable by whoever may read the directory (umask applies)."""
    mask = os.umask(0o022)
    os.umask(mask)
    path = write_bundle(tmp_path / "b")
    for name in ("config.json", "vocab.json", "model.safetensors"):
        assert (path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name
    (path / "vocab.json").chmod(0o640)  # a mode the owner chose is kept when the file is saved again
    write_bundle(path, seed=1)
    assert (path / "vocab.json").stat().st_mode & 0o777 == 0o640

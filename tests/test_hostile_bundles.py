"""Hostile bundles, round two: bounded before anything is allocated, checked for what their task needs.

Every bundle here passes the checks of the first round (consistent shapes, a
valid safetensors file) or breaks them in a new way: sizes no model has, a
5,001-digit integer, a model of another task, a lone surrogate, no checksums.
Each is refused with a BundleError naming the file, one line and exit 2 on the
command line; a bundle the loader accepts never makes the service answer 500.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tracemalloc
import warnings

import numpy as np
import pytest

import rnnkit
import rnnkit.bundle
from rnnkit.bundle import load_bundle, save_bundle
from rnnkit.cli import main
from rnnkit.config import ModelConfig
from rnnkit.data.pairs import PairVocab
from rnnkit.data.text import CharVocab
from rnnkit.data.vocab import Vocab
from rnnkit.errors import BundleError
from rnnkit.params import parameter_shapes
from rnnkit.tasks.charlm import lm_config

WORDS = ("good", "bad", "film", "great", "awful", "plot")
CHARS = "abcdefgh \n"
SEQ2SEQ_SETTINGS = {"dataset": "reverse", "source_level": "char", "target_level": "char", "max_source_len": 20,
                    "max_target_len": 20}


def weights(config, seed=0):
    rng = np.random.default_rng(seed)
    return {k: (0.3 * rng.standard_normal(s)).astype(np.float32) for k, s in parameter_shapes(config).items()}


def sentiment_bundle(path, metrics=None, **model):
    vocab = Vocab(("<pad>", "<unk>", *WORDS))
    config = ModelConfig(vocab_size=len(vocab), cell="gru", embedding_dim=4, hidden_size=3, **model)
    return save_bundle(path, "sentiment", config, vocab.to_json(), weights(config), settings={"maxlen": 20},
                       metrics=metrics)


def charlm_bundle(path, metrics=None, **model):
    vocab = CharVocab.build(CHARS)
    config = lm_config(ModelConfig(vocab_size=1, cell="gru", embedding_dim=4, hidden_size=6), len(vocab))
    config = ModelConfig(**{**config.to_dict(), **model})
    return save_bundle(path, "charlm", config, vocab.to_json(), weights(config), settings={"seq_len": 16},
                       metrics=metrics)


def seq2seq_bundle(path, metrics=None, **model):
    side = PairVocab.build(["abc def"], "char")
    config = ModelConfig(vocab_size=len(side), target_vocab_size=len(side), architecture="encoder_decoder",
                         cell="gru", embedding_dim=4, hidden_size=5, attention="luong", **model)
    vocab = {"source": side.to_json(), "target": side.to_json()}
    return save_bundle(path, "seq2seq", config, vocab, weights(config), settings=SEQ2SEQ_SETTINGS, metrics=metrics)


BUILDERS = {"sentiment": sentiment_bundle, "charlm": charlm_bundle, "seq2seq": seq2seq_bundle}
COMMANDS = {"sentiment": ["predict", "{b}", "a good film"], "charlm": ["generate", "{b}", "--length", "5"],
            "seq2seq": ["translate", "{b}", "abc"]}


def edit_json(path, name, edit, rehash=False):
    """Change `name` (config.json or vocab.json) of the bundle at `path`; `rehash`: record the new SHA-256, as a
    careful forger would, so the checksum is not what refuses it."""
    document = json.loads((path / name).read_text())
    edit(document)
    (path / name).write_text(json.dumps(document))
    if rehash:
        config = json.loads((path / "config.json").read_text())
        config["files"][name] = "sha256:" + hashlib.sha256((path / name).read_bytes()).hexdigest()
        (path / "config.json").write_text(json.dumps(config))


def long_integer(digits=5001, sign=""):
    """A JSON number of `digits` digits (text: json.dumps of such an int fails by itself)."""
    return sign + "9" * digits


def assert_refused(path, *fragments, load=load_bundle):
    """`load` refuses with every fragment in its message, allocating next to nothing."""
    tracemalloc.start()
    try:
        with pytest.raises(BundleError) as info:
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    assert peak < 8 * 2**20, f"{peak} bytes allocated to refuse a tiny bundle"
    return str(info.value)


def assert_cli_refuses(path, task, capsys, *fragments):
    code = main([a.format(b=path) for a in COMMANDS[task]])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rnnkit: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


# --------------------------------------------------------------------------- 5. sizes bounded before allocating


@pytest.mark.parametrize("task,field,value", [
    ("sentiment", "num_layers", 100_000_000), ("charlm", "num_layers", 17), ("sentiment", "hidden_size", 10**9),
    ("sentiment", "embedding_dim", 10**9), ("sentiment", "vocab_size", 10**12), ("charlm", "output_size", 10**12),
    ("seq2seq", "target_vocab_size", 10**12), ("seq2seq", "num_layers", 10**8),
])
def test_a_size_no_model_has_is_refused_naming_the_field(tmp_path, capsys, task, field, value):
    path = BUILDERS[task](tmp_path / "b")
    edit_json(path, "config.json", lambda d: d["model"].update({field: value}))
    assert_refused(path, "config.json", field, "more than the")
    assert_cli_refuses(path, task, capsys, field)


def test_sizes_each_allowed_but_too_many_parameters_together(tmp_path, capsys):
    path = sentiment_bundle(tmp_path / "b")
    edit_json(path, "config.json", lambda d: d["model"].update(vocab_size=1 << 24, embedding_dim=1 << 16))
    assert_refused(path, "config.json", "parameters", "more than the")
    assert_cli_refuses(path, "sentiment", capsys, "parameters")


def test_a_sparse_weights_file_of_terabytes_is_refused_before_a_byte_is_read(tmp_path):
    path = sentiment_bundle(tmp_path / "b")
    os.truncate(path / "model.safetensors", rnnkit.bundle.MAX_WEIGHTS_BYTES + 1)  # sparse: no disk used
    assert_refused(path, "model.safetensors", "more than the")


def test_save_refuses_a_model_the_loader_would_refuse(tmp_path, monkeypatch):
    monkeypatch.setattr(rnnkit.bundle, "MAX_WEIGHTS_BYTES", 64)
    with pytest.raises(BundleError, match="parameters"):
        sentiment_bundle(tmp_path / "b")
    assert not (tmp_path / "b").exists()


# --------------------------------------------------------------------------- 6. a 5,001-digit integer


@pytest.mark.parametrize("where", ["model.hidden_size", "settings.maxlen", "metrics.loss", "format_version",
                                   "negative_in_train"])
def test_a_five_thousand_digit_integer_in_config_json(tmp_path, capsys, where):
    path = sentiment_bundle(tmp_path / "b")
    text = (path / "config.json").read_text()
    document = json.loads(text)
    marker = 123456789
    if where == "negative_in_train":
        document["train"]["seed"] = marker
        number = long_integer(sign="-")
    elif "." in where:
        section, key = where.split(".")
        document[section][key] = marker
        number = long_integer()
    else:
        document[where] = marker
        number = long_integer()
    (path / "config.json").write_text(json.dumps(document).replace(str(marker), number))
    assert_refused(path, "config.json", "5,001-digit integer")
    assert_cli_refuses(path, "sentiment", capsys, "5,001-digit integer")


def test_a_five_thousand_digit_integer_in_vocab_json(tmp_path, capsys):
    path = charlm_bundle(tmp_path / "b")
    text = (path / "vocab.json").read_text()
    (path / "vocab.json").write_text(text.replace('"counts": [', f'"counts": [{long_integer()}, ', 1))
    assert_refused(path, "vocab.json", "5,001-digit integer")
    assert_cli_refuses(path, "charlm", capsys, "5,001-digit integer")


def test_a_five_thousand_digit_integer_in_the_weights_header(tmp_path, capsys):
    path = sentiment_bundle(tmp_path / "b")
    header = ('{"embedding.weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, ' + long_integer() + ']}}')
    (path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\0" * 4)
    assert_refused(path, "model.safetensors", "damaged header")
    assert_cli_refuses(path, "sentiment", capsys, "model.safetensors")


# --------------------------------------------------------------------------- 7. a model that does not fit its task


def _sentiment_with_seq2seq_model(path):
    side = PairVocab.build(["abc def"], "char")
    config = ModelConfig(vocab_size=len(side), target_vocab_size=len(side), architecture="encoder_decoder",
                         cell="gru", embedding_dim=4, hidden_size=5)
    return save_bundle(path, "sentiment", config, {"source": side.to_json(), "target": side.to_json()},
                       weights(config), settings={"maxlen": 20})


def _seq2seq_with_sentiment_model(path):
    side = PairVocab.build(["abc def"], "char")
    config = ModelConfig(vocab_size=len(side), cell="gru", embedding_dim=4, hidden_size=5)
    return save_bundle(path, "seq2seq", config, side.to_json(), weights(config), settings=SEQ2SEQ_SETTINGS)


def _sentiment_with_a_char_vocabulary(path):
    vocab = CharVocab.build("abcdefg")
    config = ModelConfig(vocab_size=len(vocab), cell="gru", embedding_dim=4, hidden_size=3)
    return save_bundle(path, "sentiment", config, vocab.to_json(), weights(config), settings={"maxlen": 20})


MISFITS = {
    "sentiment_with_three_outputs": ("sentiment", lambda p: sentiment_bundle(p, output_size=3), "output_size 1"),
    "sentiment_with_a_seq2seq_model": ("sentiment", _sentiment_with_seq2seq_model, "architecture many_to_one"),
    "sentiment_with_a_many_to_many_model": ("sentiment", lambda p: sentiment_bundle(p, architecture="many_to_many"),
                                            "architecture many_to_one"),
    "sentiment_with_a_char_vocabulary": ("sentiment", _sentiment_with_a_char_vocabulary, "vocab.json"),
    "sentiment_maxlen_of_a_billion": ("sentiment", lambda p: edit_json(sentiment_bundle(p), "config.json", lambda d:
                                      d["settings"].update(maxlen=10**9)) or p, "maxlen"),
    "charlm_output_not_its_vocabulary": ("charlm", lambda p: charlm_bundle(p, output_size=4), "output_size equal"),
    "charlm_bidirectional": ("charlm", lambda p: charlm_bundle(p, bidirectional=True), "one direction"),
    "charlm_many_to_one": ("charlm", lambda p: charlm_bundle(p, architecture="many_to_one"), "many_to_many"),
    "charlm_settings_text_not_a_path": ("charlm", lambda p: edit_json(charlm_bundle(p), "config.json", lambda d:
                                        d["settings"].update(text=[1])) or p, "text must be"),
    "seq2seq_with_a_sentiment_model": ("seq2seq", _seq2seq_with_sentiment_model, "encoder_decoder"),
    "seq2seq_teacher_forcing_not_a_number": ("seq2seq", lambda p: edit_json(seq2seq_bundle(p), "config.json", lambda d:
                                             d["settings"].update(teacher_forcing="x")) or p, "teacher forcing"),
}


@pytest.mark.parametrize("case", sorted(MISFITS))
def test_a_bundle_whose_model_does_not_fit_its_task_is_refused_at_load(tmp_path, capsys, case):
    task, make, fragment = MISFITS[case]
    path = make(tmp_path / "b")
    load_bundle(path)  # every check of the loader passes: shapes, checksums, vocabulary size
    message = assert_refused(path, fragment, load=rnnkit.load)
    assert str(path) in message
    assert_cli_refuses(path, task, capsys, fragment)


# --------------------------------------------------------------------------- 8. surrogates and checksums


def test_a_character_vocabulary_with_a_lone_surrogate_is_refused(tmp_path, capsys):
    path = charlm_bundle(tmp_path / "b")
    edit_json(path, "vocab.json", lambda d: d["tokens"].__setitem__(3, "\ud800"), rehash=True)
    assert_refused(path, "vocab.json", "lone surrogate")
    assert_cli_refuses(path, "charlm", capsys, "lone surrogate")


@pytest.mark.parametrize("task", ["sentiment", "seq2seq"])
def test_a_word_vocabulary_with_a_lone_surrogate_is_refused(tmp_path, capsys, task):
    path = BUILDERS[task](tmp_path / "b")
    tokens = (lambda d: d["tokens"]) if task == "sentiment" else (lambda d: d["target"]["tokens"])
    edit_json(path, "vocab.json", lambda d: tokens(d).__setitem__(5, "x\udc80"), rehash=True)
    assert_refused(path, "vocab.json", "lone surrogate")
    assert_cli_refuses(path, task, capsys, "lone surrogate")


def test_a_lone_surrogate_in_config_json_is_refused(tmp_path):
    path = charlm_bundle(tmp_path / "b")
    edit_json(path, "config.json", lambda d: d["settings"].update(text="\udfff.txt"))
    assert_refused(path, "config.json", "lone surrogate")


def test_an_escaped_emoji_pair_is_text_and_loads(tmp_path):
    path = charlm_bundle(tmp_path / "b")
    edit_json(path, "config.json", lambda d: d["settings"].update(text="\U0001f600.txt"))  # json.dumps escapes it
    assert "\\ud83d\\ude00" in (path / "config.json").read_text()
    assert load_bundle(path).settings["text"] == "\U0001f600.txt"


@pytest.mark.parametrize("edit,missing", [
    (lambda d: d.pop("files"), "model.safetensors and vocab.json"),
    (lambda d: d.update(files={}), "model.safetensors and vocab.json"),
    (lambda d: d["files"].pop("vocab.json"), "vocab.json"),
    (lambda d: d["files"].update({"model.safetensors": None}), "model.safetensors"),
])
def test_a_bundle_without_its_checksums_is_refused(tmp_path, capsys, edit, missing):
    path = sentiment_bundle(tmp_path / "b")
    edit_json(path, "config.json", edit)
    edit_json(path, "vocab.json", lambda d: d["tokens"].__setitem__(2, "wonderful"))  # unnoticed without them
    assert_refused(path, "config.json", f"records no SHA-256 for {missing}")
    assert_cli_refuses(path, "sentiment", capsys, "records no SHA-256")


# --------------------------------------------------------------------------- the service never answers 500

pytest.importorskip("fastapi", reason="the service checks need the serve extra: pip install -e '.[serve]'")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from rnnkit.serve.app import create_app  # noqa: E402

NOT_FINITE = {"loss": float("nan"), "best": float("inf"), "history": [float("-inf"), 0.5], "nested": {"x": float("nan")}}
REQUESTS = [("get", "/", None), ("get", "/healthz", None), ("get", "/v1/model", None),
            ("post", "/v1/predict", {"text": "a good film"}), ("post", "/v1/predict", {"texts": ["bad", "?"]}),
            ("post", "/v1/explain", {"text": "a great plot"}), ("post", "/v1/generate", {"prime": "ab", "length": 5}),
            ("post", "/v1/generate", {"prime": "ab", "length": 5, "temperature": 1e-310, "seed": 1}),
            ("post", "/v1/translate", {"text": "abc"}), ("post", "/v1/translate", {"texts": ["fed", "zz"]})]


@pytest.mark.parametrize("task", sorted(BUILDERS))
def test_metrics_with_nan_and_infinity_answer_null_and_no_endpoint_answers_500(tmp_path, task):
    path = BUILDERS[task](tmp_path / "b", metrics=NOT_FINITE)
    assert "NaN" in (path / "config.json").read_text()  # what json.dump writes; the loader reads it back
    with TestClient(create_app(rnnkit.load(path))) as client:
        for method, url, body in REQUESTS:
            response = getattr(client, method)(url, **({"json": body} if body is not None else {}))
            assert response.status_code < 500, (url, body, response.text)
        info = client.get("/v1/model").json()
    assert info["metrics"] == {"loss": None, "best": None, "history": [None, 0.5], "nested": {"x": None}}

"""Bad input and faults across the command line, the Python API and the service.

Each input gives a clear error or the documented behaviour, a non-zero exit code
where it fails, and leaves what was saved before intact (see ../shared/RELIABILITY.md
for the catalogue). Text inputs run through all three surfaces from one table;
files, permissions, a full disk and broken data sets follow. Fast: a random-weight
bundle (no training) and one tiny training run.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit.bundle import load_bundle, save_bundle
from rnnkit.cli import main
from rnnkit.config import ModelConfig
from rnnkit.data import imdb
from rnnkit.data.synthetic import FILLER, NEGATIVE, POSITIVE, write_imdb_layout
from rnnkit.data.vocab import Vocab
from rnnkit.errors import BundleError, DataError, InputError
from rnnkit.params import parameter_shapes

pytest.importorskip("fastapi", reason="the service checks need the serve extra: pip install -e '.[serve]'")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from rnnkit.serve.app import create_app  # noqa: E402
from rnnkit.serve.limits import ServeLimits  # noqa: E402

TEN_MB = "a good film " * 900_000  # 10.8 MB, 2.7 million words


def write_bundle(path, seed=0):
    """A sentiment bundle with random weights (what it predicts does not matter here, how it fails does)."""
    vocab = Vocab(("<pad>", "<unk>", *sorted(set(POSITIVE + NEGATIVE + FILLER + ("not",)))))
    config = ModelConfig(vocab_size=len(vocab), cell="gru", embedding_dim=8, hidden_size=8, bidirectional=True,
                         pooling="mean_max")
    rng = np.random.default_rng(seed)
    tensors = {k: (0.3 * rng.standard_normal(s)).astype(np.float32) for k, s in parameter_shapes(config).items()}
    return save_bundle(path, "sentiment", config, vocab.to_json(), tensors,
                       settings={"maxlen": 50, "truncating": "pre", "padding": "post", "vocab_size": None})


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_bundle(tmp_path_factory.mktemp("bad") / "bundle")


@pytest.fixture(scope="module")
def model(bundle):
    return rnnkit.load(bundle)


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model, ServeLimits())) as test_client:  # the default limits (1 MiB bodies)
        yield test_client


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def cli(capsys, *args, stdin: bytes | None = None, monkeypatch=None) -> tuple[int, str, str]:
    """`rnnkit ARGS` in this process (the same code path as the command); stdin as raw bytes."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments, exit_code=2):
    assert code == exit_code, err
    assert err.startswith("rnnkit: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


# --------------------------------------------------------------------------- text, on every surface

OK, NO_WORDS, UNKNOWN, NOT_UTF8 = "ok", "no words", "vocabulary", "UTF-8"

# name: (text, what the API / CLI argument / CLI stdin line / service do); bytes are raw, not UTF-8
TEXTS = {
    "empty": ("", NO_WORDS),
    "whitespace_only": ("  \t \u3000\u00a0 ", NO_WORDS),
    "punctuation_only": ("..., ;:", NO_WORDS),
    "emoji_only": ("😀🎬🍿", NO_WORDS),
    "other_scripts_only": ("映画 は 素晴らしい фильм", UNKNOWN),
    "only_unknown_words": ("qwzx blorf snarg", UNKNOWN),
    "ten_megabytes": (TEN_MB, OK),
    "nul_bytes": ("a good\x00film\x00", OK),
    "control_characters": ("\x01\x02a great\x1b[31m film\x7f\x08", OK),
    "emoji_and_words": ("a great film 😀🎬", OK),
    "other_scripts_and_words": ("a great film, 映画 très bien", OK),
    "zero_width_and_rtl_marks": ("\u200f\u202ea great\u200b film\ufeff", OK),
    "lone_surrogate": ("a great \ud800 film", OK),
    "hundred_thousand_char_word": ("x" * 100_000 + " a great film", OK),
    "html_breaks": ("great<br /><br />film<br>", OK),
    "not_utf8_bytes": (b"a great film \xff\xfe\xc0", NOT_UTF8),
    "latin1_bytes": ("a great café".encode("latin-1"), NOT_UTF8),
    "surrogate_bytes": (b"a great \xed\xa0\x80 film", NOT_UTF8),
}


def _as_bytes(text) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_python_api(model, name):
    text, outcome = TEXTS[name]
    if isinstance(text, bytes) or outcome != OK:
        with pytest.raises(InputError, match="must be a string" if isinstance(text, bytes) else outcome):
            model.predict([text])
        return
    (result,) = model.predict(text)
    assert result["label"] in ("positive", "negative") and 0.5 <= result["probability"] <= 1.0
    assert result["truncated"] == (result["tokens"] > 50)


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_command_line_argument(bundle, capsys, name):
    text, outcome = TEXTS[name]
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")  # how Python hands a program bytes it cannot decode
    elif "\ud800" in text:
        outcome = NOT_UTF8  # on a command line a lone surrogate can only come from bytes that are not UTF-8
    code, out, err = cli(capsys, "predict", bundle, "--json", text)
    if outcome == OK:
        assert code == 0 and json.loads(out)["label"] in ("positive", "negative"), err
    else:
        assert_one_line_error(code, err, outcome)


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_command_line_stdin(bundle, capsys, monkeypatch, name):
    text, outcome = TEXTS[name]
    data = _as_bytes(text)
    if b"\xed\xa0\x80" in data:
        outcome = NOT_UTF8  # a surrogate encoded as bytes is not UTF-8
    good = b"a great film\n"
    code, out, err = cli(capsys, "predict", bundle, "-", stdin=good + data + b"\n" + good, monkeypatch=monkeypatch)
    first, record, last = (json.loads(line) for line in out.splitlines())
    assert "label" in first and "label" in last  # the lines around a bad one are still judged
    if outcome == OK:
        assert code == 0 and record["label"] in ("positive", "negative") and err == ""
    else:
        assert code == 1 and outcome in record["error"] and "Traceback" not in err
        assert err == 'rnnkit: 1 line(s) could not be judged (see their "error")\n'


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_service(client, name):
    text, outcome = TEXTS[name]
    if isinstance(text, bytes):
        body = b'{"text": "' + text + b'"}'
    else:
        body = json.dumps({"text": text}).encode()  # ensure_ascii: a lone surrogate travels as \ud800
    response = client.post("/v1/predict", content=body, headers={"Content-Type": "application/json"})
    expected = {OK: 200, NO_WORDS: 422, UNKNOWN: 422, NOT_UTF8: 400}[outcome]
    if len(body) > ServeLimits().max_body_bytes:
        expected = 413  # documented: refused before it is read
    assert response.status_code == expected, response.text[:300]
    if expected != 200:
        error = response.json()["error"]
        assert error["status"] == expected and error["message"]
        if expected == 422:
            assert outcome in error["message"]
    assert client.post("/v1/predict", json={"text": "a great film"}).status_code == 200  # and the next one works


def test_a_command_line_of_bytes_that_are_not_utf8(bundle):
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", "predict", str(bundle), b"a great \xff\xfe film"],
                          capture_output=True, timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr.decode(), "not valid UTF-8")


@pytest.mark.parametrize("value", [None, 42, b"a great film", ["a great film"]])
def test_python_api_refuses_texts_that_are_not_strings(model, value):
    with pytest.raises(InputError, match="must be a string"):
        model.predict([value])


@pytest.mark.parametrize("value", [None, 42])
def test_python_api_refuses_a_bare_non_string(model, value):
    with pytest.raises(InputError, match="a string or a list of strings"):
        model.predict(value)


def test_empty_batches(model, bundle, capsys, client):
    assert model.predict([]) == []  # documented: nothing in, nothing out
    code, _, err = cli(capsys, "predict", bundle)
    assert_one_line_error(code, err, "give a review")
    response = client.post("/v1/predict", json={"texts": []})
    assert response.status_code == 422 and "empty" in response.json()["error"]["message"]


# --------------------------------------------------------------------------- generation (character LM), on every surface

LM_CHARS = "abcdefgh \n"  # 10 characters the model knows
SERVE = ServeLimits()  # the service's defaults: length 1..2000, primes up to 4000 characters
GOOD = {"prime": "abc ", "length": 20, "temperature": 0.8, "top_k": None, "seed": 0}
NEVER_SAW = "never saw in training"


def write_lm_bundle(path):
    """A character-LM bundle with random weights (no training)."""
    from rnnkit.data.text import CharVocab
    from rnnkit.numpy_engine.models import init_parameters
    from rnnkit.tasks.charlm import lm_config

    vocab = CharVocab.build(LM_CHARS)
    config = lm_config(ModelConfig(vocab_size=1, cell="gru", hidden_size=16, embedding_dim=8), len(vocab))
    return save_bundle(path, "charlm", config, vocab.to_json(), init_parameters(config, np.random.default_rng(0)),
                       settings={"seq_len": 16})


@pytest.fixture(scope="module")
def lm_bundle(tmp_path_factory):
    return write_lm_bundle(tmp_path_factory.mktemp("bad_lm") / "lm")


@pytest.fixture(scope="module")
def lm(lm_bundle):
    return rnnkit.load(lm_bundle)


@pytest.fixture(scope="module")
def lm_client(lm):
    with TestClient(create_app(lm, ServeLimits())) as test_client:  # the default limits
        yield test_client


# name: (settings over GOOD, the Python API's and the CLI's error (None: accepted), the service's 422 (None: 200))
SETTINGS = {
    "length_zero": ({"length": 0}, "length must be", "length: must be a whole number of characters from 1 to 2000"),
    "length_negative": ({"length": -5}, "length must be", "length: must be a whole number"),
    "length_over_the_service_limit": ({"length": SERVE.max_generate_chars + 1}, None, "got 2001"),
    "length_huge": ({"length": 10**12}, "length must be", "from 1 to 2000"),
    "temperature_zero": ({"temperature": 0.0}, "temperature must be", "temperature: must be a finite number > 0"),
    "temperature_negative": ({"temperature": -0.5}, "temperature must be", "finite number > 0"),
    "temperature_nan": ({"temperature": float("nan")}, "temperature must be", "got nan"),
    "temperature_infinite": ({"temperature": float("inf")}, "temperature must be", "got inf"),
    "temperature_tiny": ({"temperature": 1e-300}, None, None),  # documented: almost greedy, not an error
    "temperature_huge": ({"temperature": 1e300}, None, None),   # ... almost uniform
    "top_k_zero": ({"top_k": 0}, "top-k must be", "top_k: must be a whole number from 1 to 10"),
    "top_k_over_the_vocabulary": ({"top_k": 11}, "top-k must be", "the model knows 10 characters"),
    "top_k_the_whole_vocabulary": ({"top_k": 10}, None, None),
    "top_k_one": ({"top_k": 1}, None, None),
    "seed_negative": ({"seed": -1}, "seed must be", "seed: must be a whole number from 0"),
    "seed_huge": ({"seed": 2**62}, None, None),
}


def _flags(options: dict) -> list[str]:
    flags = []
    for key, value in options.items():
        if value is not None:
            flags += [f"--{key.replace('_', '-')}", str(value) if not isinstance(value, bytes)
                      else value.decode("utf-8", "surrogateescape")]
    return flags


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_generation_setting_python_api(lm, name):
    options, error, _ = SETTINGS[name]
    settings = {**GOOD, **options}
    if error:
        with pytest.raises(InputError, match=error):
            lm.stream(**settings)  # refused at the call, before any character is written
        return
    text = lm.generate(**settings)
    assert len(text) == settings["length"] and set(text) <= set(LM_CHARS)
    assert text == lm.generate(**settings)  # the same seed gives the same text


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_generation_setting_command_line(lm_bundle, capsys, name):
    options, error, _ = SETTINGS[name]
    settings = {**GOOD, **options}
    code, out, err = cli(capsys, "generate", lm_bundle, *_flags(settings))
    if error:
        assert_one_line_error(code, err, error)
        assert out == ""
    else:
        assert code == 0 and out == settings["prime"] + rnnkit.load(lm_bundle).generate(**settings) + "\n", err


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_generation_setting_service(lm_client, lm, name):
    options, _, error = SETTINGS[name]
    settings = {**GOOD, **options}
    body = json.dumps(settings).encode()  # NaN and Infinity travel as JavaScript's literals, which JSON parsers meet
    response = lm_client.post("/v1/generate", content=body, headers={"Content-Type": "application/json"})
    if error:
        assert response.status_code == 422, response.text[:300]
        assert response.json()["error"]["status"] == 422 and error in response.json()["error"]["message"]
    else:
        assert response.status_code == 200, response.text[:300]
        assert response.json()["text"] == lm.generate(**settings)
    assert lm_client.post("/v1/generate", json=GOOD).status_code == 200  # and the next one works


# name: (prime, the Python API's and the CLI's error (None: accepted),
#        the service: {facts} of its 200 answer (unseen characters skipped, the default), or (status, error))
PRIMES = {
    "empty": ("", None, {"prime_read": 0, "unknown": 0}),  # documented: starts after a newline
    "whitespace_only": ("  \t\u3000 ", NEVER_SAW, {"prime_read": 3, "unknown": 2}),
    "emoji_only": ("😀🎬", NEVER_SAW, {"prime_read": 0, "unknown": 2}),
    "other_scripts_only": ("映画は", NEVER_SAW, {"prime_read": 0, "unknown": 3}),
    "nul_and_control_characters": ("ab\x00c\x1b[d", NEVER_SAW, {"prime_read": 4, "unknown": 3}),
    "zero_width_and_rtl_marks": ("\u200fab\u200bc\u202e", NEVER_SAW, {"prime_read": 3, "unknown": 3}),
    "lone_surrogate": ("ab\ud800c", "lone surrogate", {"prime_read": 3, "unknown": 1}),
    "repeated_unseen_character": ("aXbXcX", NEVER_SAW, {"prime_read": 3, "unknown": 3}),
    "over_the_service_limit": ("abc " * 1001, None, (422, "4004 characters, more than this server's limit of 4000")),
    "a_megabyte": ("a" * 1_000_000, "at most 100000", (422, "limit of 4000")),
    "not_utf8_bytes": (b"ab \xff\xfe", "UTF-8", (400, "UTF-8")),
    "a_number": (42, "must be text", (422, "prime: must be a string")),
    "null": (None, "must be text", (422, "got null")),
    "a_list": (["abc"], "must be text", (422, "got a list")),
}


@pytest.mark.parametrize("name", sorted(PRIMES))
def test_prime_python_api(lm, name):
    prime, error, _ = PRIMES[name]
    if isinstance(prime, bytes):
        error = "must be text"  # the Python API takes str
    if error:
        with pytest.raises(InputError, match=error):
            lm.stream(**{**GOOD, "prime": prime})
    else:
        assert len(lm.generate(**{**GOOD, "prime": prime})) == GOOD["length"]


@pytest.mark.parametrize("name", sorted(name for name, (prime, _, _) in PRIMES.items() if isinstance(prime, (str, bytes))))
def test_prime_command_line(lm_bundle, capsys, name):
    prime, error, _ = PRIMES[name]
    if isinstance(prime, str) and "\ud800" in prime:
        error = "UTF-8"  # on a command line a lone surrogate can only come from bytes that are not UTF-8
    code, out, err = cli(capsys, "generate", lm_bundle, *_flags({**GOOD, "prime": prime}))
    if error:
        assert_one_line_error(code, err, error)
    else:
        assert code == 0 and out.startswith(prime) and len(out) == len(prime) + GOOD["length"] + 1, err


@pytest.mark.parametrize("name", sorted(PRIMES))
def test_prime_service(lm_client, lm, name):
    prime, _, outcome = PRIMES[name]
    if isinstance(prime, bytes):
        body = b'{"prime": "' + prime + b'", "length": 20}'
    else:
        body = json.dumps({**GOOD, "prime": prime}).encode()  # ensure_ascii: a lone surrogate travels as \ud800
    response = lm_client.post("/v1/generate", content=body, headers={"Content-Type": "application/json"})
    if isinstance(outcome, tuple):
        status, error = outcome
        assert response.status_code == status, response.text[:300]
        assert response.json()["error"]["status"] == status and error in response.json()["error"]["message"]
    else:
        assert response.status_code == 200, response.text[:300]
        answer = response.json()
        assert {k: answer[k] for k in outcome} == outcome
        assert answer["unknown_handling"] == ("skipped" if outcome["unknown"] else "none")
        assert sum(u["count"] for u in answer["unknown_characters"]) == outcome["unknown"]
        read = "".join(c for c in prime if c in LM_CHARS)  # what the model read: the prime without unseen characters
        assert answer["text"] == lm.generate(**{**GOOD, "prime": read})
        refused = lm_client.post("/v1/generate", content=json.dumps({**GOOD, "prime": prime, "unknown": "refuse"}),
                                 headers={"Content-Type": "application/json"})
        if outcome["unknown"]:
            assert refused.status_code == 422 and ("lone surrogate" if "\ud800" in prime else NEVER_SAW) in refused.text
        else:
            assert refused.status_code == 200
    assert lm_client.post("/v1/generate", json=GOOD).status_code == 200  # and the next one works


def test_generation_on_a_sentiment_bundle_and_sentiment_on_a_character_lm(bundle, lm_bundle, client, lm_client, capsys):
    code, _, err = cli(capsys, "generate", bundle, "--length", "5")
    assert_one_line_error(code, err, "needs a charlm, wordlm or condlm bundle")
    response = client.post("/v1/generate", json=GOOD)
    assert response.status_code == 404 and "sentiment model" in response.json()["error"]["message"]
    code, _, err = cli(capsys, "predict", lm_bundle, "abc")
    assert code == 2 and "rnnkit generate" in err and "Traceback" not in err
    response = lm_client.post("/v1/predict", json={"text": "abc"})
    assert response.status_code == 404 and "charlm model" in response.json()["error"]["message"]


# --------------------------------------------------------------------------- a directory where a file belongs


@pytest.fixture
def earlier(tmp_path):
    """An output directory that already holds a bundle from an earlier run; it must come out untouched."""
    out = write_bundle(tmp_path / "out")
    return out, snapshot(out)


@pytest.mark.parametrize("args,fragment", [
    (["train", "imdb", "--data", "{empty_dir}"], "train/neg is missing"),
    (["train", "seq2seq", "--pairs", "{empty_dir}"], "no pair file"),
    (["train", "imdb", "--data", "{missing}"], "no IMDB data found"),
    (["evaluate", "{out}", "--data", "{empty_dir}"], "train/neg is missing"),
])
def test_a_directory_or_nothing_where_data_should_be(tmp_path, earlier, capsys, monkeypatch, args, fragment):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    out, before = earlier
    names = {"empty_dir": tmp_path / "empty", "missing": tmp_path / "nowhere.tar.gz", "out": out}
    code, _, err = cli(capsys, *[a.format(**names) for a in args], "--quiet",
                       *(["--out", out] if args[0] == "train" else []))
    assert_one_line_error(code, err, fragment)
    assert snapshot(out) == before


@pytest.mark.parametrize("where,fragment", [("file", "is a file; give a directory"),
                                            ("under_a_file", "is a file, so no directory can be made there")])
def test_out_that_cannot_be_a_directory_is_refused_before_any_work(tmp_path, capsys, where, fragment):
    (tmp_path / "afile").write_text("keep me")
    out = tmp_path / "afile" if where == "file" else tmp_path / "afile" / "run"
    code, _, err = cli(capsys, "train", "imdb", "--data", tmp_path / "nowhere.tar.gz", "--out", out)
    assert_one_line_error(code, err, fragment)
    assert (tmp_path / "afile").read_text() == "keep me"


# --------------------------------------------------------------------------- permissions


def _root_can_write(directory: Path) -> bool:
    try:
        (directory / ".probe").write_text("x")
    except PermissionError:
        return False
    (directory / ".probe").unlink()
    return True


def test_out_under_a_read_only_parent(tmp_path, capsys):
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        if _root_can_write(parent):
            pytest.skip("running as root: permission bits do not stop root (the simulated test below covers it)")
        code, _, err = cli(capsys, "train", "imdb", "--data", tmp_path / "x.tar.gz", "--out", parent / "run")
        assert_one_line_error(code, err, "cannot be written", "Permission denied")
    finally:
        parent.chmod(0o755)


def test_out_that_cannot_be_written_simulated(tmp_path, capsys, monkeypatch):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(tempfile, "mkstemp", denied)  # what a read-only directory does, even to root
    code, _, err = cli(capsys, "train", "imdb", "--data", tmp_path / "x.tar.gz", "--out", tmp_path / "run")
    assert_one_line_error(code, err, "cannot be written", "Permission denied")


def test_an_unreadable_bundle_file(bundle, capsys, monkeypatch):
    import rnnkit.bundle

    def guarded_open(path, *args, **kwargs):
        if Path(path).name == "vocab.json":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(rnnkit.bundle, "open", guarded_open, raising=False)
    with pytest.raises(BundleError, match="cannot read vocabulary file .*vocab.json \\(Permission denied\\)"):
        load_bundle(bundle)
    code, _, err = cli(capsys, "predict", bundle, "a great film")
    assert_one_line_error(code, err, "vocab.json", "Permission denied")


def test_an_unreadable_review_file(tmp_path, monkeypatch):
    folder = write_imdb_layout(tmp_path / "imdb", per_split=6, tarball=False)
    victim = sorted((folder / "aclImdb" / "train" / "neg").iterdir())[0]
    real = os.open

    def guarded_open(path, *args, **kwargs):  # what a file without read permission does, even to root
        if Path(path) == victim:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    with pytest.raises(DataError, match=f"cannot read {victim} \\(Permission denied\\)"):
        list(imdb.iter_reviews(folder))


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path, monkeypatch, capsys):
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "afile" / "cache"))  # under a file: fails even for root
    tar = write_imdb_layout(tmp_path / "aclImdb_v1.tar.gz", per_split=8)
    corpus = imdb.load_corpus(tar, progress=False)
    assert len(corpus.labels["train"]) == 8 and "could not cache" in capsys.readouterr().err


# --------------------------------------------------------------------------- a full disk


def full_disk(monkeypatch, when=lambda path: True, half_write=False):
    """ENOSPC inside rnnkit.fileio.atomic_paths, when a temporary file for a target matching `when` is synced.

    half_write: fail in Path.write_bytes instead, after writing half the bytes (a torn temporary file).
    """
    from rnnkit import fileio

    def no_space(path):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    if half_write:
        real = Path.write_bytes

        def write_bytes(self, data):
            if when(self):
                real(self, data[: len(data) // 2])
                raise no_space(self)
            return real(self, data)

        monkeypatch.setattr(Path, "write_bytes", write_bytes)
        return
    real_sync = fileio._fsync_file

    def sync(path):
        if when(path):
            raise no_space(path)
        real_sync(path)

    monkeypatch.setattr(fileio, "_fsync_file", sync)


def leftovers(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".rnnkit-tmp")]


@pytest.mark.parametrize("half_write", [False, True], ids=["at_fsync", "mid_write"])
@pytest.mark.parametrize("file", ["model.safetensors", "vocab.json", "config.json"])
def test_a_full_disk_while_saving_a_bundle_keeps_the_previous_one(earlier, monkeypatch, file, half_write):
    out, before = earlier
    full_disk(monkeypatch, when=lambda p: Path(p).name.startswith(f".{file}."), half_write=half_write)
    with pytest.raises(OSError) as info:
        write_bundle(out, seed=1)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert snapshot(out) == before and not leftovers(out)
    load_bundle(out)


def test_a_full_disk_during_training_keeps_bundle_and_checkpoint_then_resumes(tmp_path, capsys, monkeypatch):
    from rnnkit.training.checkpoint import load_checkpoint

    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    data = write_imdb_layout(tmp_path / "aclImdb_v1.tar.gz", per_split=48)
    out = tmp_path / "run"
    args = ["train", "imdb", "--data", data, "--out", out, "--epochs", "2", "--hidden", "4", "--embedding-dim", "4",
            "--batch-size", "8", "--checkpoint-every", "1", "--patience", "0", "--threads", "1", "--quiet"]
    # the disk fills up at the first checkpoint after epoch 1 saved its bundle
    full_disk(monkeypatch, when=lambda p: (out / "config.json").exists() and ".state.safetensors." in Path(p).name
              and (out / "checkpoint" / "state.safetensors").stat().st_mtime_ns > (out / "config.json").stat().st_mtime_ns)
    code, _, err = cli(capsys, *args)
    assert_one_line_error(code, err, "No space left on device", "--resume", exit_code=1)
    monkeypatch.undo()
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    assert not leftovers(out)
    load_bundle(out)  # the epoch-1 bundle
    progress, _, _ = load_checkpoint(out, "torch")  # the last checkpoint that fitted on the disk
    assert progress.epoch == 2 and progress.batch == 0
    code, _, err = cli(capsys, *args, "--resume")
    assert code == 0, err
    assert load_checkpoint(out, "torch")[0].epoch == 3 and not leftovers(out)


def test_a_full_disk_for_the_data_cache_only_costs_time(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    tar = write_imdb_layout(tmp_path / "aclImdb_v1.tar.gz", per_split=8)
    full_disk(monkeypatch, when=lambda p: "corpus" in Path(p).name)
    corpus = imdb.load_corpus(tar, progress=False)
    assert len(corpus.labels["test"]) == 8 and "No space left on device" in capsys.readouterr().err
    assert not leftovers(tmp_path / "cache")


# --------------------------------------------------------------------------- broken data sets


def _folder(tmp_path):
    return write_imdb_layout(tmp_path / "imdb", per_split=8, tarball=False)


def _tarball_with(tmp_path, extra: dict[str, bytes], drop: str | None = None):
    folder = _folder(tmp_path)
    tar = tmp_path / "broken.tar.gz"
    with tarfile.open(tar, "w:gz") as archive:
        for path in sorted(folder.rglob("*.txt")):
            name = str(path.relative_to(folder))
            if drop is None or f"/{drop}/" not in name:
                archive.add(path, name)
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return tar


def _without_test_neg(tmp_path):
    folder = _folder(tmp_path)
    for review in (folder / "aclImdb" / "test" / "neg").iterdir():
        review.unlink()
    (folder / "aclImdb" / "test" / "neg").rmdir()
    return folder


def _with_file(name: str, content: bytes | None):
    """A generated aclImdb folder plus `name` (a directory when content is None)."""
    def make(tmp_path):
        folder = _folder(tmp_path)
        path = folder / "aclImdb" / name
        path.mkdir() if content is None else path.write_bytes(content)
        return folder
    return make


def _not_a_tarball(tmp_path):
    path = tmp_path / "x.tar.gz"
    path.write_bytes(b"\x1f\x8b" + np.random.default_rng(0).bytes(300))
    return path


BROKEN_DATA = {
    "folder_missing_split": (_without_test_neg, "test/neg is missing"),
    "tarball_missing_split": (lambda t: _tarball_with(t, {}, drop="test"), "the test split has 0 positive"),
    "folder_misnamed_file": (_with_file("train/pos/notes.txt", b"x"), "ID_RATING.txt"),
    "tarball_misnamed_file": (lambda t: _tarball_with(t, {"aclImdb/train/neg/readme.txt": b"x"}), "ID_RATING.txt"),
    "folder_mislabelled_rating": (_with_file("train/pos/99_2.txt", b"an awful film"), "rated 2/10 is filed under pos/"),
    "tarball_mislabelled_rating": (lambda t: _tarball_with(t, {"aclImdb/test/neg/98_9.txt": b"a superb film"}),
                                   "rated 9/10 is filed under neg/"),
    "folder_directory_as_review": (_with_file("train/pos/97_9.txt", None), "cannot read"),
    "tarball_not_a_tarball": (_not_a_tarball, "not a readable IMDB tarball"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_DATA))
def test_broken_data_sets_fail_clearly_and_keep_earlier_outputs(tmp_path, earlier, capsys, monkeypatch, case):
    make, fragment = BROKEN_DATA[case]
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    source = make(tmp_path)
    with pytest.raises(DataError, match=fragment.replace("(", "\\(")):
        imdb.load_corpus(source, progress=False)
    out, before = earlier
    code, _, err = cli(capsys, "train", "imdb", "--data", source, "--out", out, "--quiet")
    assert_one_line_error(code, err, fragment)
    assert snapshot(out) == before


def test_reviews_with_no_words_or_bad_bytes_are_documented_not_fatal(tmp_path, capsys):
    folder = _folder(tmp_path)
    (folder / "aclImdb" / "train" / "pos" / "90_10.txt").write_bytes(b"  ... \xf0\x9f\x98\x80 ")  # no words
    (folder / "aclImdb" / "train" / "pos" / "91_10.txt").write_bytes(b"a superb caf\xe9 film")  # latin-1 byte
    reviews = {Path(r.where).name: r for r in imdb.iter_reviews(folder)}
    assert reviews["91_10.txt"].text == "a superb caf\ufffd film"  # replaced, the review is kept
    corpus = imdb.load_corpus(folder, progress=False)
    assert len(corpus.labels["train"]) == 8 + 1  # the word-less review is skipped, with a warning
    assert "skipped 1 review(s) with no words" in capsys.readouterr().err

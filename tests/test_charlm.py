"""Character-level language model: text reading, vocabulary, BPTT batches, training, sampling, CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from rnnkit.bundle import load_bundle, save_bundle
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.text import UNK, UNK_ID, CharVocab, chunk_batches, read_text, split_text, stream_layout
from rnnkit.errors import DataError, InputError
from rnnkit.tasks import charlm, load_predictor

TINY = "".join(f"the cat sat on the mat {i % 7}.\n" for i in range(300))  # 7,800 characters, 19 distinct


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """A one-layer LSTM trained for 3 epochs on TINY (a few seconds)."""
    out = tmp_path_factory.mktemp("charlm") / "tiny"
    model = ModelConfig(vocab_size=1, cell="lstm", hidden_size=32, embedding_dim=16, dropout=0.0)
    train = TrainConfig(epochs=3, batch_size=8, learning_rate=1e-2, seed=0, threads=1, checkpoint_every=0)
    best = charlm.train(TINY, model, train, charlm.CharLMSettings(seq_len=32), out, progress=False)
    return out, best


def random_bundle(tmp_path, cell: str, layers: int = 2, chars: str = "abcdefgh \n") -> str:
    """An untrained bundle with numpy-initialised weights (fast; for engine agreement)."""
    from rnnkit.numpy_engine.models import init_parameters

    vocab = CharVocab.build(chars)
    config = charlm.lm_config(ModelConfig(vocab_size=1, cell=cell, hidden_size=24, embedding_dim=8,
                                          num_layers=layers), len(vocab))
    tensors = init_parameters(config, np.random.default_rng(7))
    tensors = {k: v * 3.0 for k, v in tensors.items()}  # sharper distributions: ties and flat ones are rare
    out = tmp_path / f"{cell}{layers}"
    save_bundle(out, "charlm", config, vocab.to_json(), tensors, settings={"seq_len": 16})
    return str(out)


# --------------------------------------------------------------------------- reading text


def test_read_text_reads_utf8_and_drops_a_byte_order_mark(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffHé 日本 🙂\r\nx".encode("utf-8"))
    assert read_text(path) == "Hé 日本 🙂\r\nx"


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"  \n\t ", "empty"),
    (b"abc\x00\x01\x02", "binary"),
    (b"caf\xe9 au lait", "not UTF-8 text (byte 0xe9 at offset 3); convert it first"),
    ("hello".encode("utf-16"), "UTF-16"),
])
def test_read_text_refuses_unusable_files_with_the_fix(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_text(path)


def test_read_text_missing_path_and_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_text(tmp_path)


def test_split_is_first_90_percent_then_last_10_percent():
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    train, val = split_text(text, 0.1)
    assert train == text[:900] and val == text[900:]


# --------------------------------------------------------------------------- vocabulary


def test_vocab_round_trip_any_script():
    text = "Hello, wörld! 日本語 🙂 \t\n"
    vocab = CharVocab.build(text)
    assert vocab.tokens[UNK_ID] == UNK and len(vocab) == len(set(text)) + 1
    assert list(vocab.tokens[1:]) == sorted(set(text))
    assert vocab.decode(vocab.encode(text)) == text
    again = CharVocab.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again == vocab
    assert sum(again.counts) == len(text)


def test_vocab_unseen_characters_become_unk():
    vocab = CharVocab.build("abc")
    ids = vocab.encode("abXcé")
    assert ids.tolist() == [1, 2, UNK_ID, 3, UNK_ID]
    assert vocab.unknown_characters("abXcéX") == ["X", "é"]
    assert vocab.encode("<unk>").tolist() == [UNK_ID] * 5  # the text "<unk>" is five unknown characters here


@pytest.mark.parametrize("data", [
    {"kind": "word", "tokens": ["<unk>", "a"], "counts": [0, 1]},
    {"kind": "char", "tokens": ["a", "b"], "counts": [1, 1]},
    {"kind": "char", "tokens": ["<unk>", "ab"], "counts": [0, 1]},
    {"kind": "char", "tokens": ["<unk>", "a", "a"], "counts": [0, 1, 1]},
    {"kind": "char", "tokens": ["<unk>", "a"], "counts": [0]},
])
def test_vocab_from_json_refuses_damaged_tables(data):
    from rnnkit.errors import BundleError

    with pytest.raises(BundleError):
        CharVocab.from_json(data)


# --------------------------------------------------------------------------- batches


def test_stream_layout_and_targets_are_the_next_character():
    ids = np.arange(101)
    inputs, targets = stream_layout(ids, 4)  # 4 streams of (101 - 1) // 4 = 25
    assert inputs.shape == targets.shape == (4, 25)
    assert inputs[:, 0].tolist() == [0, 25, 50, 75]
    np.testing.assert_array_equal(targets, inputs + 1)


@pytest.mark.parametrize("offset", [0, 3])
def test_chunk_i_plus_1_continues_chunk_i_in_every_stream(offset):
    ids = np.arange(1000) % 97
    chunks = chunk_batches(ids, batch_size=5, seq_len=16, offset=offset)
    assert chunks[0].first and not any(c.first for c in chunks[1:])
    assert [c.index for c in chunks] == list(range(len(chunks)))
    stream = (len(ids) - offset - 1) // 5
    for a, b in zip(chunks, chunks[1:]):
        assert a.inputs.shape[0] == b.inputs.shape[0] == 5
        np.testing.assert_array_equal(b.inputs[:, 0], a.targets[:, -1])  # row n picks up where it stopped
        np.testing.assert_array_equal(a.targets[:, :-1], a.inputs[:, 1:])
    rows = np.concatenate([c.inputs for c in chunks], axis=1)
    np.testing.assert_array_equal(rows, ids[offset:offset + 5 * stream].reshape(5, stream))


def test_epoch_chunks_move_the_boundaries_reproducibly():
    ids = np.arange(5000) % 50
    first = charlm.epoch_chunks(ids, 8, 32, np.random.default_rng(0))
    again = charlm.epoch_chunks(ids, 8, 32, np.random.default_rng(0))
    assert all(np.array_equal(a.inputs, b.inputs) for a, b in zip(first, again))
    starts = {int(charlm.epoch_chunks(ids, 8, 32, np.random.default_rng(s))[0].inputs[0, 0]) for s in range(10)}
    assert len(starts) > 1


def test_text_too_short_for_the_batch_layout_names_the_fix():
    with pytest.raises(DataError, match="smaller values"):
        charlm.prepare_text("abc" * 100, 0.1, charlm.CharLMSettings(seq_len=64), batch_size=32)
    with pytest.raises(DataError, match="empty"):
        charlm.prepare_text(" \n ", 0.1, charlm.CharLMSettings(), batch_size=1)


# --------------------------------------------------------------------------- training


def test_training_lowers_the_loss_far_below_ln_v(tiny_bundle):
    out, best = tiny_bundle
    vocab_size = len(set(TINY)) + 1
    assert best["loss"] < 0.25 * math.log(vocab_size)  # ln 20 = 3.0 at the start
    assert best["bpc"] == pytest.approx(best["loss"] / math.log(2))
    history = json.loads((out / "history.json").read_text())["epochs"]
    assert len(history) == 3 and history[-1]["val_loss"] < history[0]["val_loss"]
    assert (out / "loss.png").is_file() and (out / "accuracy.png").is_file()
    bundle = load_bundle(out)
    assert bundle.task == "charlm" and bundle.config.architecture == "many_to_many"
    assert bundle.settings["seq_len"] == 32 and bundle.metrics["val_loss"] == pytest.approx(best["loss"])


def test_carried_state_round_trips_as_arrays():
    carried = charlm.CarriedState()
    assert carried.get() == {}
    h, c = np.ones((2, 3, 4), np.float32), np.zeros((2, 3, 4), np.float32)
    carried.set({"h": h, "c": c})
    assert set(carried.get()) == {"h", "c"}
    carried.set({"h": h})
    np.testing.assert_array_equal(carried.get()["h"], h)


def test_precision_auto_means_bf16_only_on_a_cpu_with_fast_bf16(tiny_bundle, monkeypatch):
    assert charlm.resolve_precision("auto", "cuda") == "fp32"
    from pathlib import Path

    real = Path.read_text
    for flags, expected in (("fpu avx512f avx512_bf16 sse", "bf16"), ("fpu amx_bf16 amx_tile", "bf16"),
                            ("fpu avx512f avx2 sse", "fp32")):
        monkeypatch.setattr(Path, "read_text", lambda self, *a, _f=flags, **k: (
            f"flags\t\t: {_f}\n" if str(self) == "/proc/cpuinfo" else real(self, *a, **k)))
        assert charlm.resolve_precision("auto", "cpu") == expected, flags
    monkeypatch.setattr(Path, "read_text", real)
    assert charlm.resolve_precision("fp32", "cpu") == "fp32" and charlm.resolve_precision("bf16", "cpu") == "bf16"
    assert load_bundle(tiny_bundle[0]).settings["precision"] == charlm.resolve_precision("auto", "cpu")
    with pytest.raises(Exception, match="precision must be one of"):
        charlm.CharLMSettings(precision="fp16")


def test_fp32_training_learns_too(tmp_path):
    model = ModelConfig(vocab_size=1, cell="gru", hidden_size=32, embedding_dim=16, num_layers=2)
    train = TrainConfig(epochs=2, batch_size=8, learning_rate=1e-2, seed=0, threads=1, checkpoint_every=0)
    best = charlm.train(TINY, model, train, charlm.CharLMSettings(seq_len=32, precision="fp32"), tmp_path,
                        progress=False)
    assert best["loss"] < 0.5 * math.log(20) and load_bundle(tmp_path).settings["precision"] == "fp32"


def test_a_language_model_cannot_be_bidirectional():
    from rnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match="left to right"):
        charlm.lm_config(ModelConfig(vocab_size=1, bidirectional=True), 10)


# --------------------------------------------------------------------------- generation


def test_generation_is_deterministic_for_a_seed_and_streams(tiny_bundle):
    model = load_predictor(tiny_bundle[0])
    first = model.generate("the ", 120, temperature=0.8, seed=3)
    assert len(first) == 120 and first == model.generate("the ", 120, temperature=0.8, seed=3)
    assert first != model.generate("the ", 120, temperature=0.8, seed=4)
    stream = model.stream("the ", 120, temperature=0.8, seed=3)
    assert next(stream) == first[0]  # one character at a time, as it is produced
    assert first[0] + "".join(stream) == first
    assert "mat" in first  # it learned the text


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_both_engines_generate_the_same_text(tmp_path, cell):
    path = random_bundle(tmp_path, cell)
    numpy_model, torch_model = load_predictor(path, "numpy"), load_predictor(path, "torch")
    for seed, temperature, top_k in ((1, 1.0, None), (2, 0.7, 3)):
        text = numpy_model.generate("abc", 200, temperature=temperature, top_k=top_k, seed=seed)
        assert text == torch_model.generate("abc", 200, temperature=temperature, top_k=top_k, seed=seed)
    assert numpy_model.evaluate("abcdefgh abc\n" * 10)["loss"] == pytest.approx(
        torch_model.evaluate("abcdefgh abc\n" * 10)["loss"], abs=1e-5)


def test_trained_bundle_generates_the_same_text_on_both_engines(tiny_bundle):
    numpy_model, torch_model = load_predictor(tiny_bundle[0], "numpy"), load_predictor(tiny_bundle[0], "torch")
    assert numpy_model.generate("the", 300, 1.0, seed=11) == torch_model.generate("the", 300, 1.0, seed=11)


def test_numpy_generation_never_imports_torch(tiny_bundle):
    code = (f"import sys, rnnkit; m = rnnkit.load({str(tiny_bundle[0])!r}); m.generate('the ', 20, seed=0); "
            "m.evaluate('the cat sat'); assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_pick_next_temperature_top_k_and_unk():
    rng = np.random.default_rng(0)
    logits = np.array([50.0, 3.0, 2.0, 1.0, -1.0])  # <unk> scored highest, but never sampled
    draws = [charlm.pick_next(logits, 1.0, None, rng) for _ in range(2000)]
    assert UNK_ID not in draws and set(draws) == {1, 2, 3, 4}
    assert {charlm.pick_next(logits, 1.0, 2, rng) for _ in range(300)} == {1, 2}
    assert {charlm.pick_next(logits, 1.0, 1, rng) for _ in range(50)} == {1}  # top-k 1 is greedy
    cold = [charlm.pick_next(logits, 0.05, None, rng) for _ in range(200)]
    assert set(cold) == {1}
    frequencies = np.bincount(draws, minlength=5)[1:] / len(draws)
    expected = np.exp(logits[1:]) / np.exp(logits[1:]).sum()
    np.testing.assert_allclose(frequencies, expected, atol=0.04)


def test_empty_prime_starts_from_a_newline(tiny_bundle):
    model = load_predictor(tiny_bundle[0])
    assert model.generate("", 30, 0.5, seed=0) == model.generate("", 30, 0.5, seed=0)
    assert charlm.start_ids(model.vocab, "").tolist() == model.vocab.encode("\n").tolist()
    assert charlm.start_ids(CharVocab.build("aab"), "").tolist() == [1]  # no newline: most frequent char


def test_long_prime_is_read_in_pieces(tiny_bundle):
    model = load_predictor(tiny_bundle[0])
    assert len(model.generate(TINY[:3000], 10, 1.0, seed=0)) == 10


@pytest.mark.parametrize("options, message", [
    ({"prime": "the Cat"}, r"never saw in training: 'C' \(U\+0043 LATIN CAPITAL LETTER C\)"),
    ({"prime": "x\ud800"}, "lone surrogate"),
    ({"prime": 5}, "must be text"),
    ({"temperature": 0}, "temperature must be a finite number > 0"),
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"temperature": float("inf")}, "temperature"),
    ({"length": 0}, "length must be"),
    ({"length": -5}, "length must be"),
    ({"length": 10**9}, "length must be"),
    ({"length": 2.5}, "length must be"),
    ({"top_k": 100}, r"top-k must be a whole number in 1\.\.19"),
    ({"top_k": 0}, "top-k"),
    ({"seed": -1}, "seed"),
])
def test_bad_generation_options_are_clear_errors(tiny_bundle, options, message):
    model = load_predictor(tiny_bundle[0])
    arguments = {"prime": "the ", "length": 10, "temperature": 1.0, "top_k": None, "seed": 0, **options}
    with pytest.raises(InputError, match=message):
        model.stream(**arguments)  # raised at the call, before any character is produced


def test_predict_and_translate_on_a_character_lm_say_what_to_use(tiny_bundle):
    model = load_predictor(tiny_bundle[0])
    for operation, task in (("predict", "sentiment or classify"), ("translate", "seq2seq")):
        with pytest.raises(InputError, match=rf"charlm model, but {operation}\(\) needs a {task} bundle; for this "
                                             r"bundle use generate\(\), evaluate\(\)"):
            getattr(model, operation)(["the cat"])


def test_evaluate_counts_unknown_characters_without_scoring_them(tiny_bundle):
    model = load_predictor(tiny_bundle[0])
    plain = model.evaluate(TINY[-1000:])
    assert plain["unknown"] == 0 and plain["chars"] == 999
    mixed = model.evaluate(TINY[-1000:].replace("cat", "CAT"))
    assert mixed["unknown"] > 0 and mixed["chars"] + mixed["unknown"] == 999
    with pytest.raises(InputError, match="no character the model knows"):
        model.evaluate("XYZXYZ")


# --------------------------------------------------------------------------- command line


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnkit.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_train_generate_evaluate(tmp_path, capsys):
    from rnnkit.cli import main

    text = tmp_path / "tiny.txt"
    text.write_text(TINY, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "charlm", "--text", str(text), "--out", str(out), "--hidden", "24", "--layers", "1",
                 "--embedding-dim", "8", "--batch-size", "8", "--seq-len", "32", "--epochs", "2", "--lr", "0.01",
                 "--threads", "1", "--quiet"]) == 0
    assert "nats/char" in capsys.readouterr().out and (out / "model.safetensors").is_file()
    generated = []
    for engine in ("numpy", "torch"):
        assert main(["generate", str(out), "--prime", "the ", "--length", "50", "--seed", "1", "--engine", engine]) == 0
        generated.append(capsys.readouterr().out)
    assert generated[0] == generated[1] and generated[0].startswith("the ") and len(generated[0]) == 4 + 50 + 1
    assert main(["generate", str(out), "--length", "5"]) == 0
    assert "--seed" in capsys.readouterr().err  # an unseeded run says how to repeat it
    assert main(["evaluate", str(out), "--json"]) == 0  # default: the validation part of the training text
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["chars"] == 779 and metrics["bpc"] == pytest.approx(metrics["loss"] / math.log(2))
    assert main(["evaluate", str(out), "--text", str(text)]) == 0
    assert "bits/char" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--prime", "Zebra"], "never saw in training"),
    (["--temperature", "0"], "temperature"),
    (["--temperature", "nan"], "temperature"),
    (["--length", "-1"], "length"),
    (["--length", "100000000"], "length"),
    (["--top-k", "500"], "top-k"),
])
def test_cli_generate_bad_options_one_line_no_traceback(tiny_bundle, args, message):
    done = run_cli("generate", str(tiny_bundle[0]), *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("rnnkit: error:") and message in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize("content", [b"", b"\x00\x01binary\x02", b"\xff\xfe\xfa not utf8"])
def test_cli_train_bad_text_files(tmp_path, content):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    done = run_cli("train", "charlm", "--text", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("rnnkit: error:") and done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_cli_generate_refuses_a_sentiment_bundle(tmp_path):
    from rnnkit.data.vocab import Vocab
    from rnnkit.numpy_engine.models import init_parameters

    vocab = Vocab.build({"good": 1})
    config = ModelConfig(vocab_size=len(vocab), hidden_size=4, embedding_dim=4)
    save_bundle(tmp_path / "s", "sentiment", config, vocab.to_json(), init_parameters(config, np.random.default_rng(0)))
    done = run_cli("generate", str(tmp_path / "s"), "--length", "5")
    assert done.returncode == 2 and "needs a charlm, wordlm or condlm bundle" in done.stderr


def test_the_command_line_trains_with_the_measured_recipe_by_default():
    """`rnnkit train charlm` (and rnnkit.train("charlm", ...)) default to charlm.DEFAULTS' recipe: AdamW weight
    decay and a cosine schedule after a warmup (bench/results/charlm.json); a flag still overrides each."""
    from rnnkit.cli import build_parser
    from rnnkit.cli.common import train_config_from

    base = ["train", "charlm", "--text", "t.txt", "--out", "runs/x"]
    args = build_parser().parse_args(base)
    config, d = train_config_from(args), charlm.DEFAULTS
    assert (args.dropout, args.hidden, args.layers) == (d["dropout"], d["hidden"], d["layers"])
    assert (config.lr_schedule, config.warmup, config.weight_decay) == (d["lr_schedule"], d["warmup"],
                                                                        d["weight_decay"])
    assert (config.learning_rate, config.epochs, config.batch_size) == (d["lr"], d["epochs"], d["batch_size"])
    assert d["lr_schedule"] == "cosine" and d["weight_decay"] > 0
    changed = train_config_from(build_parser().parse_args([*base, "--lr-schedule", "exponential",
                                                           "--weight-decay", "0"]))
    assert (changed.lr_schedule, changed.weight_decay, changed.lr_decay) == ("exponential", 0.0, d["lr_decay"])

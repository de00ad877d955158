"""Generation at a subnormal temperature, the Python API from threads, and options that used to give tracebacks.

- `--temperature 1e-310` tends to the greedy text (it wrote the last character over and over);
  ordinary temperatures draw exactly what they drew before.
- `CharLM.generate` (and `translate`) from several threads give each thread the text of its seed.
- `--weight-decay -1`, `--lr inf`, `--clip-norm nan`, `--host not..a..host`, a closed stdin: one line, exit 2.
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading

import numpy as np
import pytest

import rnnkit
from rnnkit.bundle import save_bundle
from rnnkit.cli import main
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.pairs import PairVocab
from rnnkit.data.text import UNK_ID, CharVocab
from rnnkit.errors import ConfigError
from rnnkit.numpy_engine.models import init_parameters
from rnnkit.params import parameter_shapes
from rnnkit.tasks.charlm import lm_config
from rnnkit.tasks.charlm.sampling import pick_next

CHARS = "abcdefghijklmnop \n"


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A random-weights two-layer LSTM character LM (sharp distributions: sampling differs from greedy)."""
    vocab = CharVocab.build(CHARS)
    config = lm_config(ModelConfig(vocab_size=1, cell="lstm", hidden_size=24, embedding_dim=8, num_layers=2),
                       len(vocab))
    tensors = {k: 3.0 * v for k, v in init_parameters(config, np.random.default_rng(0)).items()}
    return save_bundle(tmp_path_factory.mktemp("lm") / "lm", "charlm", config, vocab.to_json(), tensors,
                       settings={"seq_len": 16})


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    side = PairVocab.build(["abcdefghij klmno"], "char")
    config = ModelConfig(vocab_size=len(side), target_vocab_size=len(side), architecture="encoder_decoder",
                         cell="gru", embedding_dim=8, hidden_size=16, bidirectional=True, attention="luong")
    rng = np.random.default_rng(0)
    tensors = {k: rng.standard_normal(s).astype(np.float32) for k, s in parameter_shapes(config).items()}
    settings = {"dataset": "reverse", "source_level": "char", "target_level": "char", "max_source_len": 40,
                "max_target_len": 40}
    return save_bundle(tmp_path_factory.mktemp("s2s") / "s2s", "seq2seq", config,
                       {"source": side.to_json(), "target": side.to_json()}, tensors, settings=settings)


# --------------------------------------------------------------------------- 12. a subnormal temperature


def pick_next_before(logits, temperature, top_k, rng):
    """pick_next as it was before the fix: the reference for ordinary temperatures."""
    z = logits.astype(np.float64) / temperature
    z[UNK_ID] = -np.inf
    if top_k is not None and top_k < len(z) - 1:
        kth = np.partition(z, len(z) - top_k)[len(z) - top_k]
        z[z < kth] = -np.inf
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(z) - 1)


@pytest.mark.parametrize("temperature", [1e-310, 5e-324, 1e-300, 1e-200])
@pytest.mark.parametrize("logits", [[9.0, 1.0, 3.0, 2.0, -4.0], [0.0, -1.0, -5.0, -0.5, -3.0], [0.0, 1e6, 2e6, 3e6, 1.0]])
def test_a_tiny_temperature_picks_the_largest_logit(logits, temperature):
    logits = np.asarray(logits, dtype=np.float32)
    best = 1 + int(np.argmax(logits[1:]))  # <unk> (id 0) is never drawn, even when its logit is the largest
    rng = np.random.default_rng(0)
    for top_k in (None, 2):
        assert [pick_next(logits, temperature, top_k, rng) for _ in range(20)] == [best] * 20


def test_ordinary_temperatures_draw_exactly_what_they_drew_before():
    rng = np.random.default_rng(1)
    for case in range(300):
        logits = (rng.standard_normal(40) * rng.choice([0.1, 1.0, 10.0, 80.0])).astype(np.float32)
        temperature = float(rng.choice([1e-3, 0.05, 0.5, 0.8, 1.0, 2.0, 50.0]))
        top_k = None if case % 3 else int(rng.integers(1, 39))
        seed = int(rng.integers(1 << 30))
        assert pick_next(logits, temperature, top_k, np.random.default_rng(seed)) == \
            pick_next_before(logits, temperature, top_k, np.random.default_rng(seed))


def test_generate_at_a_subnormal_temperature_is_the_greedy_text(lm, capsys):
    model = rnnkit.load(lm)
    greedy = model.generate("abc", 60, top_k=1, seed=3)
    assert greedy != max(CHARS) * 60  # what the overflow gave: the last character of the vocabulary, repeated
    assert model.generate("abc", 60, temperature=1e-310, seed=3) == greedy
    assert main(["generate", str(lm), "--prime", "abc", "--length", "60", "--temperature", "1e-310",
                 "--seed", "3"]) == 0
    assert capsys.readouterr().out == "abc" + greedy + "\n"


# --------------------------------------------------------------------------- 13. threads


def in_threads(count: int, work) -> list:
    """work() in `count` threads started together; their results in order."""
    results = [None] * count
    start = threading.Barrier(count)

    def run(i):
        start.wait()
        results[i] = work()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_generate_from_several_threads_gives_each_the_text_of_its_seed(lm, engine):
    if engine == "torch":
        pytest.importorskip("torch")
    model = rnnkit.load(lm, engine=engine)
    length, threads = (200, 8) if engine == "numpy" else (40, 4)  # torch: each call fans out to every core
    expected = model.generate("ab", length, temperature=0.9, seed=7)
    assert in_threads(threads, lambda: model.generate("ab", length, temperature=0.9, seed=7)) == [expected] * threads


def test_translate_from_several_threads_gives_each_its_own_translation(translator):
    model = rnnkit.load(translator)
    texts = ["abcdef ghij", "klmno abc", "hello", "jjjj"]
    expected = [r["translation"] for r in model.translate(texts, beam=3)]
    results = in_threads(8, lambda: [[r["translation"] for r in model.translate(texts, beam=3)] for _ in range(5)])
    assert results == [[expected] * 5] * 8


# --------------------------------------------------------------------------- 14. one line, not a traceback


@pytest.mark.parametrize("field,value,flag", [
    ("learning_rate", math.inf, "--lr"), ("learning_rate", math.nan, "--lr"), ("learning_rate", 0.0, "--lr"),
    ("weight_decay", -1.0, "--weight-decay"), ("weight_decay", math.nan, "--weight-decay"),
    ("clip_norm", math.nan, "--clip-norm"), ("clip_norm", math.inf, "--clip-norm"), ("clip_norm", -1.0, "--clip-norm"),
    ("lr_decay", math.nan, "--lr-decay"), ("validation_fraction", math.nan, "--val-fraction"),
    ("seed", -1, "--seed"), ("patience", 1.5, "--patience"), ("momentum", math.inf, "momentum"),
])
def test_train_config_refuses_non_finite_and_negative_numbers_naming_the_flag(field, value, flag):
    with pytest.raises(ConfigError, match=f"{field}.*must be") as info:
        TrainConfig(**{field: value})
    assert flag in str(info.value)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize("flag,value", [("--weight-decay", "-1"), ("--lr", "inf"), ("--clip-norm", "nan"),
                                        ("--lr", "nan")])
def test_train_flags_out_of_range_are_one_line_on_either_engine(tmp_path, capsys, engine, flag, value):
    (tmp_path / "t.txt").write_text("the cat sat on the mat.\n" * 50)
    out = tmp_path / "out"
    code = main(["train", "charlm", "--text", str(tmp_path / "t.txt"), "--out", str(out), "--engine", engine,
                 "--quiet", "--epochs", "1", flag, value])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rnnkit: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert flag in err
    assert not out.exists() or not any(out.iterdir())


def test_serve_with_a_host_that_is_no_name_is_one_line(lm, capsys):
    code = main(["serve", str(lm), "--host", "not..a..host", "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rnnkit: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert "not..a..host" in err


def test_translate_from_a_closed_stdin_is_one_line(translator, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)  # what Python makes of `<&-`
    code = main(["translate", str(translator), "-"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rnnkit: error: ") and err.count("\n") == 1 and "stdin is closed" in err, err


def test_the_command_with_stdin_closed_says_one_line(translator):
    proc = subprocess.run(["bash", "-c", f'"{sys.executable}" -m rnnkit.cli translate "$0" - <&-', str(translator)],
                          capture_output=True, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and "stdin is closed" in err, err

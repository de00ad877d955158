"""Resumable training: interrupted runs end with the same weights as uninterrupted ones."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.synthetic import write_imdb_layout
from rnnkit.errors import TrainingError
from rnnkit.tasks import sentiment
from rnnkit.training.trainer import TrainingInterrupted


def _setup(tmp_path, name, epochs=2, **train):
    sequences, labels, vocab = sentiment.demo_data(300, seed=5)
    model_config = ModelConfig(vocab_size=len(vocab), cell="lstm", embedding_dim=8, hidden_size=8,
                               bidirectional=True, dropout=0.2, pooling="mean_max")
    train_config = TrainConfig(epochs=epochs, batch_size=16, learning_rate=5e-3, seed=3, patience=0,
                               checkpoint_every=4, lr_decay=0.9, **train)
    settings = sentiment.SentimentSettings(maxlen=40, vocab_size=None)
    return dict(sequences=sequences, labels=labels, vocab=vocab, model_config=model_config,
                train_config=train_config, settings=settings, out_dir=tmp_path / name, progress=False)


def _final_weights(out_dir):
    state = load_file(str(out_dir / "checkpoint" / "state.safetensors"))
    return {k: v for k, v in state.items() if k.startswith(("model.", "optim."))}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _loss_module(engine):
    """The module whose binary_cross_entropy_with_logits the engine's training step calls."""
    if engine == "torch":
        import torch
        return torch.nn.functional
    import rnnkit.numpy_engine.losses
    return rnnkit.numpy_engine.losses


FINE_TUNING = dict(lr_schedule="linear", warmup=0.2, layer_lr_decay=2.6, gradual_unfreeze=True)


@pytest.mark.parametrize("schedule", [{}, FINE_TUNING], ids=["exponential", "fine-tuning"])
@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_sigterm_mid_epoch_then_resume_gives_identical_weights(tmp_path, monkeypatch, engine, schedule):
    sentiment.train(**_setup(tmp_path, "straight", **schedule), engine=engine)
    reference = _final_weights(tmp_path / "straight")

    module = _loss_module(engine)
    real_bce = module.binary_cross_entropy_with_logits
    calls = {"n": 0}

    def signalling(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 23:  # mid epoch 2; the handler only sets a flag, the step finishes
            os.kill(os.getpid(), signal.SIGTERM)
        return real_bce(*args, **kwargs)

    monkeypatch.setattr(module, "binary_cross_entropy_with_logits", signalling)
    setup = _setup(tmp_path, "stopped", **schedule)
    with pytest.raises(TrainingInterrupted) as info:
        sentiment.train(**setup, engine=engine)
    assert info.value.exit_code == 128 + signal.SIGTERM and "--resume" in str(info.value)
    monkeypatch.setattr(module, "binary_cross_entropy_with_logits", real_bce)
    sentiment.train(**setup, resume=True, engine=engine)
    _assert_same(_final_weights(tmp_path / "stopped"), reference)
    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    _assert_same(load_file(str(tmp_path / "stopped" / "model.safetensors")), straight)


def test_resume_with_the_other_engine_is_refused(tmp_path):
    setup = _setup(tmp_path, "run", epochs=1)
    sentiment.train(**setup, engine="numpy")
    with pytest.raises(TrainingError, match="--engine numpy"):
        sentiment.train(**setup, resume=True, engine="torch")


def test_resume_refuses_changed_options_and_missing_checkpoint(tmp_path):
    setup = _setup(tmp_path, "run", epochs=1)
    with pytest.raises(TrainingError, match="nothing to resume"):
        sentiment.train(**setup, resume=True)
    sentiment.train(**setup)
    setup["train_config"] = TrainConfig(**{**setup["train_config"].to_dict(), "learning_rate": 0.1, "epochs": 2})
    with pytest.raises(TrainingError, match="learning_rate"):
        sentiment.train(**setup, resume=True)


def test_resume_removes_temporaries_a_kill_left_in_the_output_directory(tmp_path):
    # kill -9 between mkstemp and os.replace (seen in bench/reliability.py: a charlm run killed while
    # saving loss.png) leaves .<name>.XXXX.rnnkit-tmp beside the bundle; the resumed run drops them
    setup = _setup(tmp_path, "run", epochs=1)
    sentiment.train(**setup, engine="numpy")
    out = tmp_path / "run"
    stale = [out / f".{name}.k1ll3d{i}.rnnkit-tmp" for i, name in
             enumerate(["model.safetensors", "vocab.json", "config.json", "history.json", "loss.png", "accuracy.png"])]
    for path in stale:
        path.write_bytes(b"")
    others = [out / ".notes.txt", out / "notes.rnnkit-tmp.txt"]  # not ours: kept
    for path in others:
        path.write_text("mine")
    setup["train_config"] = TrainConfig(**{**setup["train_config"].to_dict(), "epochs": 2})
    sentiment.train(**setup, resume=True, engine="numpy")
    assert [p.name for p in stale if p.exists()] == []
    assert all(p.read_text() == "mine" for p in others)
    assert not [p for p in out.rglob("*") if p.name.endswith(".rnnkit-tmp")]


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_non_finite_loss_stops_naming_the_step_and_keeps_the_best_bundle(tmp_path, monkeypatch, engine):
    setup = _setup(tmp_path, "nan", epochs=3)
    module = _loss_module(engine)
    real_bce = module.binary_cross_entropy_with_logits
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        result = real_bce(*args, **kwargs)
        if calls["n"] != 25:  # a poisoned batch in epoch 2
            return result
        return result * float("nan") if engine == "torch" else (float("nan"), result[1])

    monkeypatch.setattr(module, "binary_cross_entropy_with_logits", poisoned)
    with pytest.raises(TrainingError, match=r"epoch 2, batch \d+ \(step 25\).*--lr"):
        sentiment.train(**setup, engine=engine)
    bundle = load_file(str(tmp_path / "nan" / "model.safetensors"))
    assert all(np.isfinite(v).all() for v in bundle.values())
    import rnnkit
    assert rnnkit.load(tmp_path / "nan").predict("a great film")[0]["label"] in ("positive", "negative")


CLI_ARGS = ["--epochs", "2", "--hidden", "8", "--embedding-dim", "8", "--batch-size", "16", "--lr", "0.005",
            "--patience", "0", "--checkpoint-every", "1", "--quiet", "--threads", "1", "--deterministic"]


def _cli(data, out, *extra):
    return [sys.executable, "-m", "rnnkit.cli", "train", "imdb", "--data", str(data), "--out", str(out), *CLI_ARGS, *extra]


@pytest.mark.parametrize("delay", [0.3, 1.1])
def test_kill_9_at_a_random_point_then_resume_matches(tmp_path, delay):
    env = {**os.environ, "RNNKIT_CACHE": str(tmp_path / "cache")}
    data = write_imdb_layout(tmp_path / "aclImdb_v1.tar.gz", per_split=120)
    subprocess.run(_cli(data, tmp_path / "straight"), check=True, env=env, capture_output=True, timeout=300)
    victim = subprocess.Popen(_cli(data, tmp_path / "killed"), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    state = tmp_path / "killed" / "checkpoint" / "state.safetensors"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    time.sleep(delay)
    victim.kill()  # SIGKILL: no handler runs
    victim.wait()
    resumed = subprocess.run(_cli(data, tmp_path / "killed", "--resume"), env=env, capture_output=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()[-500:]
    _assert_same(_final_weights(tmp_path / "killed"), _final_weights(tmp_path / "straight"))


@pytest.mark.parametrize("damage", [{"python_rng": "x"}, {"progress": {"epoch": 1, "bogus": 2}},
                                    {"engine_state": None}])
def test_damaged_checkpoint_metadata_is_a_clear_error(tmp_path, damage):
    import json

    from safetensors import safe_open
    from safetensors.numpy import save_file

    setup = _setup(tmp_path, "run", epochs=1)
    sentiment.train(**setup, engine="numpy")
    path = tmp_path / "run" / "checkpoint" / "state.safetensors"
    with safe_open(str(path), framework="numpy") as handle:
        document = json.loads(handle.metadata()["checkpoint"])
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    save_file(tensors, str(path), metadata={"checkpoint": json.dumps({**document, **damage})})
    with pytest.raises(TrainingError, match="is damaged.*without --resume"):
        sentiment.train(**setup, resume=True, engine="numpy")


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_seq2seq_from_the_command_line_resumes_like_every_task(tmp_path, monkeypatch, engine, capsys):
    """`rnnkit train seq2seq ... --resume` after a stop continues the run (it used to start over)."""
    from rnnkit.cli import main

    def argv(out):
        return ["train", "seq2seq", "--task", "reverse", "--train-size", "300", "--test-size", "20", "--epochs", "2",
                "--hidden", "8", "--embedding-dim", "8", "--batch-size", "16", "--checkpoint-every", "4",
                "--patience", "0", "--engine", engine, "--out", str(out), "--quiet"]

    assert main(argv(tmp_path / "straight")) == 0
    if engine == "torch":
        import torch.nn.functional as module
        name = "cross_entropy"
    else:
        import rnnkit.numpy_engine.losses as module
        name = "cross_entropy_with_logits"
    real = getattr(module, name)
    calls = {"n": 0}

    def signalling(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 25:  # in epoch 2: the handler only sets a flag, the step finishes and checkpoints
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, signalling)
    assert main(argv(tmp_path / "stopped")) == 128 + signal.SIGTERM
    assert "--resume" in capsys.readouterr().err
    monkeypatch.setattr(module, name, real)
    resumed = [a for a in argv(tmp_path / "stopped") if a != "--quiet"] + ["--resume"]
    assert main(resumed) == 0
    assert "resuming at epoch 2, batch " in capsys.readouterr().err  # not a fresh start
    _assert_same(_final_weights(tmp_path / "stopped"), _final_weights(tmp_path / "straight"))

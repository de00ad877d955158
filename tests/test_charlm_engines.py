"""Character LM training on both engines, and resuming with the carried hidden state."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest
from safetensors.numpy import load_file

from rnnkit.bundle import load_bundle
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.tasks import charlm, load_predictor
from rnnkit.training.trainer import TrainingInterrupted

TINY = "".join(f"the cat sat on the mat {i % 7}.\n" for i in range(300))  # 7,800 characters, 19 distinct


def _run(tmp_path, name, engine, resume=False, cell="gru"):
    model = ModelConfig(vocab_size=1, cell=cell, hidden_size=24, embedding_dim=8, dropout=0.1)
    train = TrainConfig(epochs=2, batch_size=8, learning_rate=1e-2, seed=2, threads=1, checkpoint_every=5,
                        patience=0, lr_decay=0.9)
    settings = charlm.CharLMSettings(seq_len=32, precision="fp32")
    return charlm.train(TINY, model, train, settings, tmp_path / name, progress=False, resume=resume, engine=engine)


def _final_state(out_dir):
    state = load_file(str(out_dir / "checkpoint" / "state.safetensors"))
    return {k: v for k, v in state.items() if k.startswith(("model.", "optim.", "carry."))}


def test_numpy_engine_trains_a_small_model(tmp_path):
    best = _run(tmp_path, "numpy", "numpy")
    assert best["loss"] < 0.5 * math.log(20)  # ln V = 3.0 untrained
    bundle = load_bundle(tmp_path / "numpy")
    assert bundle.settings["engine"] == "numpy" and bundle.settings["precision"] == "fp32"
    numpy_model, torch_model = load_predictor(tmp_path / "numpy", "numpy"), load_predictor(tmp_path / "numpy", "torch")
    assert numpy_model.generate("the ", 100, 0.8, seed=5) == torch_model.generate("the ", 100, 0.8, seed=5)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_sigint_mid_epoch_then_resume_carries_the_state_and_ends_identical(tmp_path, monkeypatch, engine):
    _run(tmp_path, "straight", engine)
    reference = _final_state(tmp_path / "straight")

    import torch
    from rnnkit.numpy_engine import losses

    module, name = (losses, "cross_entropy_with_logits") if engine == "numpy" else (torch.nn.functional, "cross_entropy")
    real, calls = getattr(module, name), {"n": 0}

    def signalling(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 12:  # mid epoch 1 (27 chunks): the next chunk needs the carried state
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, signalling)
    with pytest.raises(TrainingInterrupted):
        _run(tmp_path, "stopped", engine)
    monkeypatch.setattr(module, name, real)
    assert any(k.startswith("carry.") for k in _final_state(tmp_path / "stopped"))
    _run(tmp_path, "stopped", engine, resume=True)
    resumed = _final_state(tmp_path / "stopped")
    assert resumed.keys() == reference.keys()
    for key in reference:
        np.testing.assert_array_equal(resumed[key], reference[key], err_msg=key)


def test_cli_trains_with_the_numpy_engine(tmp_path, capsys):
    from rnnkit.cli import main

    text = tmp_path / "tiny.txt"
    text.write_text(TINY, encoding="utf-8")
    args = ["train", "charlm", "--text", str(text), "--out", str(tmp_path / "run"), "--engine", "numpy", "--cell", "rnn",
            "--layers", "1", "--hidden", "16", "--embedding-dim", "8", "--batch-size", "8", "--seq-len", "32",
            "--epochs", "1", "--lr", "0.01", "--quiet"]
    assert main(args) == 0
    assert "nats/char" in capsys.readouterr().out
    assert load_bundle(tmp_path / "run").settings["engine"] == "numpy"
    assert main([*args, "--precision", "bf16", "--out", str(tmp_path / "bf16")]) == 2
    assert "for the torch engine" in capsys.readouterr().err

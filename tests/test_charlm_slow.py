"""Slow: a character LM on the real tiny-shakespeare (set RNNKIT_SHAKESPEARE to the text file)."""

from __future__ import annotations

import math
import os

import pytest

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.text import read_text, split_text
from rnnkit.tasks import charlm, load_predictor

SHAKESPEARE = os.environ.get("RNNKIT_SHAKESPEARE")


@pytest.mark.slow
@pytest.mark.skipif(not SHAKESPEARE, reason="set RNNKIT_SHAKESPEARE=../shared/data/tinyshakespeare.txt "
                                            "to train on the real text")
def test_one_epoch_on_tiny_shakespeare_learns_and_generates(tmp_path):
    text = read_text(SHAKESPEARE)
    model = ModelConfig(vocab_size=1, cell="lstm", hidden_size=128, embedding_dim=32)
    train = TrainConfig(epochs=1, batch_size=32, learning_rate=3e-3, seed=0, checkpoint_every=0)
    best = charlm.train(text, model, train, charlm.CharLMSettings(seq_len=64), tmp_path, progress=False)
    assert len(set(text)) + 1 == load_predictor(tmp_path).bundle.config.vocab_size  # 65 characters + <unk>
    assert best["loss"] < 2.3 < math.log(66)  # ln V = 4.19 untrained; one epoch of a small LSTM gets ~2
    numpy_model, torch_model = load_predictor(tmp_path, "numpy"), load_predictor(tmp_path, "torch")
    sample = numpy_model.generate("ROMEO:", 300, temperature=0.8, seed=1)
    assert sample == torch_model.generate("ROMEO:", 300, temperature=0.8, seed=1)
    assert sample.count(" ") > 20  # words, not noise
    scored = numpy_model.evaluate(split_text(text, 0.1)[1])
    assert scored["loss"] == pytest.approx(best["loss"], abs=1e-4) and scored["unknown"] == 0

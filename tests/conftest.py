"""Shared fixtures: small generated data and a tiny trained sentiment bundle."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory):
    """A small GRU sentiment bundle trained on generated reviews (a few seconds)."""
    from rnnkit.config import ModelConfig, TrainConfig
    from rnnkit.tasks import sentiment

    out = tmp_path_factory.mktemp("bundle") / "demo"
    sequences, labels, vocab = sentiment.demo_data(1500, seed=0)
    model_config = ModelConfig(vocab_size=len(vocab), cell="gru", embedding_dim=16, hidden_size=16,
                               bidirectional=True, pooling="mean_max")
    train_config = TrainConfig(epochs=5, batch_size=32, learning_rate=1e-2, seed=0, patience=2,
                               threads=1)  # one thread: two would fight for a busy machine's cores
    settings = sentiment.SentimentSettings(maxlen=80, vocab_size=None)
    best = sentiment.train(sequences, labels, vocab, model_config, train_config, settings, out,
                           progress=False, extra_settings={"dataset": "demo"})
    return out, best

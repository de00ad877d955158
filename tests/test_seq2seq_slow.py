"""Slow: English->French on the real Tatoeba pairs (set RNNKIT_PAIRS to the TSV file)."""

from __future__ import annotations

import os

import pytest

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.pairs import group_references, read_pairs
from rnnkit.tasks import load_predictor
from rnnkit.tasks import seq2seq as s2s

PAIRS = os.environ.get("RNNKIT_PAIRS")


@pytest.mark.slow
@pytest.mark.skipif(not PAIRS, reason="set RNNKIT_PAIRS=../shared/data/eng-fra-tatoeba-5k.tsv to train on real pairs")
def test_tatoeba_attention_model_translates_held_out_sentences(tmp_path):
    settings = s2s.Seq2SeqSettings(max_source_len=20, max_target_len=20)
    splits = s2s.pair_file_splits(read_pairs(PAIRS), heldout=0.1, val_fraction=0.1, seed=0)
    source, target = s2s.build_vocabs(splits.train, settings)
    train, val = (s2s.encode_split(p, source, target, settings) for p in (splits.train, splits.val))
    config = ModelConfig(vocab_size=len(source), target_vocab_size=len(target), architecture="encoder_decoder",
                         cell="gru", embedding_dim=64, hidden_size=64, bidirectional=True, dropout=0.3,
                         attention="luong")
    s2s.train(train, val, source, target, config, TrainConfig(epochs=6, batch_size=32, learning_rate=3e-3,
                                                              threads=1), settings, tmp_path, progress=False)
    sources, references = group_references([s for s, _ in splits.test], [t for _, t in splits.test])
    metrics = load_predictor(tmp_path, engine="numpy").evaluate(sources, references, beam=5)
    assert metrics["count"] > 200 and metrics["bleu"] > 4.0  # an untrained model scores ~0

import numpy as np
import pytest

import rnnkit
from rnnkit.data.synthetic import generate_reviews
from rnnkit.errors import InputError
from rnnkit.tasks import sentiment


def test_generated_reviews_are_balanced_and_deterministic():
    texts, labels = generate_reviews(100, seed=4)
    assert labels.sum() == 50
    assert generate_reviews(100, seed=4)[0] == texts


def test_stratified_split_keeps_class_balance_and_is_disjoint():
    labels = np.array([0] * 80 + [1] * 20)
    train, val = sentiment.stratified_split(labels, 0.25, np.random.default_rng(0))
    assert set(train).isdisjoint(val) and len(train) + len(val) == 100
    assert labels[val].sum() == 5 and len(val) == 25


def test_binary_metrics_confusion_matrix():
    metrics = sentiment.binary_metrics(np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 0, 1]))
    assert metrics["confusion_matrix"] == [[1, 1], [1, 1]] and metrics["accuracy"] == 0.5
    assert metrics["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.4])))


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_first_loss_is_about_ln2(engine):
    from rnnkit.config import ModelConfig, TrainConfig
    sequences, labels, vocab = sentiment.demo_data(256, seed=3)
    config = ModelConfig(vocab_size=len(vocab), cell="lstm", hidden_size=16, embedding_dim=16)
    settings = sentiment.SentimentSettings(maxlen=80, vocab_size=None)
    training = sentiment.SentimentTraining(sequences, labels, vocab, config, settings, batch_size=32,
                                           validation_fraction=0.5)
    training.setup(np.random.default_rng(0))
    if engine == "torch":
        import torch
        torch.manual_seed(0)
        parts = training.torch_parts(TrainConfig(), torch.device("cpu"))
        with torch.no_grad():
            metrics = parts.validate(parts.model.eval())
    else:
        parts = training.numpy_parts(TrainConfig())
        metrics = parts.validate(parts.model)
    assert metrics["count"] == 128 and metrics["loss"] == pytest.approx(np.log(2), abs=0.05)


def test_numpy_engine_trains_and_the_torch_engine_runs_its_bundle(tmp_path):
    from rnnkit.config import ModelConfig, TrainConfig
    sequences, labels, vocab = sentiment.demo_data(1500, seed=1)
    config = ModelConfig(vocab_size=len(vocab), cell="gru", embedding_dim=16, hidden_size=16, bidirectional=True,
                         pooling="max", dropout=0.1)
    train = TrainConfig(epochs=3, batch_size=32, learning_rate=2e-2, seed=0, patience=0)
    best = sentiment.train(sequences, labels, vocab, config, train, sentiment.SentimentSettings(maxlen=60,
                           vocab_size=None), tmp_path, progress=False, engine="numpy")
    assert best["accuracy"] > 0.85, best  # chance: 0.5
    test_seqs, test_labels, _ = sentiment.demo_data(300, seed=2, vocab=vocab)
    by_numpy = rnnkit.load(tmp_path, engine="numpy")
    assert by_numpy.evaluate(test_seqs, test_labels)["accuracy"] > 0.85
    texts = ["a wonderful and moving film", "a boring mess with a dull plot"]
    p_numpy = [r["probability_positive"] for r in by_numpy.predict(texts)]
    p_torch = [r["probability_positive"] for r in rnnkit.load(tmp_path, engine="torch").predict(texts)]
    np.testing.assert_allclose(p_numpy, p_torch, atol=1e-5)


def test_training_learns_generated_reviews_and_writes_a_full_bundle(demo_bundle):
    path, best = demo_bundle
    assert best["accuracy"] > 0.9
    for name in ("config.json", "vocab.json", "model.safetensors", "history.json", "loss.png", "accuracy.png"):
        assert (path / name).is_file(), name


def test_held_out_accuracy_and_predictions(demo_bundle):
    path, _ = demo_bundle
    model = rnnkit.load(path, engine="torch")
    sequences, labels, _ = sentiment.demo_data(400, seed=11, vocab=model.vocab)
    assert model.evaluate(sequences, labels)["accuracy"] > 0.9
    good, bad = model.predict(["a wonderful and funny film , the best", "boring . the worst mess"])
    assert good["label"] == "positive" and bad["label"] == "negative"
    assert good["probability"] > 0.5 and 0 <= bad["probability_positive"] < 0.5


def test_predict_reports_truncation_and_unknown_words(demo_bundle):
    path, _ = demo_bundle
    model = rnnkit.load(path, engine="torch")
    long_review = "great film " * 200
    result = model.predict(long_review)[0]
    assert result["truncated"] and result["tokens"] == 400
    assert model.predict("great zzzunknown")[0]["unknown"] == 1


@pytest.mark.parametrize("text,match", [("", "no words"), ("   \n\t", "no words"), ("😀 🎬", "no words"),
                                        ("qwertyuiop asdfgh", "none of the 2 words"), (None, "must be a string")])
def test_bad_reviews_get_clear_errors(demo_bundle, text, match):
    model = rnnkit.load(demo_bundle[0], engine="torch")
    with pytest.raises(InputError, match=match):
        model.predict([text])


def test_pre_padding_mode_reads_fixed_length_batches():
    settings = sentiment.SentimentSettings(maxlen=6, padding="pre")
    batches = sentiment.make_batches([np.array([5, 6]), np.arange(2, 12)], np.array([0, 1]), settings, 8, None)
    assert batches[0].ids.tolist() == [[0, 0, 0, 0, 5, 6], [6, 7, 8, 9, 10, 11]]
    assert batches[0].lengths.tolist() == [6, 6]

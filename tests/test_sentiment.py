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


def test_first_loss_is_about_ln2():
    import torch
    from rnnkit.config import ModelConfig
    from rnnkit.torch_engine import build_model
    sequences, labels, vocab = sentiment.demo_data(256, seed=3)
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=len(vocab), cell="lstm", hidden_size=16, embedding_dim=16)).eval()
    settings = sentiment.SentimentSettings(maxlen=80, vocab_size=None)
    with torch.no_grad():
        metrics = sentiment._torch_metrics(model, sequences, labels, settings, torch.device("cpu"))
    assert metrics["loss"] == pytest.approx(np.log(2), abs=0.05)


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

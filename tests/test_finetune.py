"""`--init BUNDLE`: a classifier that starts from a trained encoder (its embedding, recurrent layers, vocabulary)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnkit
from rnnkit.bundle import load_bundle
from rnnkit.cli import main
from rnnkit.config import ModelConfig
from rnnkit.data.labelled import read_labelled
from rnnkit.errors import InputError
from rnnkit.tasks.classify import ClassifySettings, ClassifyTraining
from rnnkit.tasks.classify.pretrained import PretrainedEncoder
from test_classify import tickets, write_csv

SMALL = dict(hidden=12, embedding_dim=10, batch_size=32, lr=0.01, quiet=True, layers=2, cell="lstm",
             bidirectional=False)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A trained 3-class classifier (2-layer LSTM) whose encoder the tests start from."""
    root = tmp_path_factory.mktemp("finetune")
    write_csv(root / "tickets.csv", tickets(400, seed=0), header=("text", "label"))
    rnnkit.train("classify", data=root / "tickets.csv", out=root / "source", epochs=2, engine="numpy", **SMALL)
    return root


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_the_encoder_and_vocabulary_are_copied_and_the_head_starts_fresh(source, engine):
    if engine == "torch":
        pytest.importorskip("torch")
    from rnnkit.config import TrainConfig

    encoder = PretrainedEncoder.load(source / "source")
    data = read_labelled(source / "tickets.csv")
    settings = ClassifySettings(labels=("billing", "crash", "login"))
    base = ModelConfig(vocab_size=1, hidden_size=64, embedding_dim=32, cell="gru", bidirectional=True)
    training = ClassifyTraining(data, base, settings, 32, 0.1, init=encoder)
    training.setup(np.random.default_rng(0))
    config = TrainConfig(epochs=1)
    parts = training.numpy_parts(config) if engine == "numpy" else training.torch_parts(config, "cpu")
    tensors = parts.tensors(parts.model)
    bundle = load_bundle(source / "source")
    assert training.vocab == bundle.vocab
    assert training.model_config.cell == "lstm" and training.model_config.num_layers == 2
    assert training.model_config.hidden_size == 12 and not training.model_config.bidirectional
    for name, value in bundle.tensors.items():
        if name.startswith(("embedding.", "rnn.")):
            np.testing.assert_array_equal(tensors[name], value, err_msg=name)
    assert not np.array_equal(tensors["head.weight"], bundle.tensors["head.weight"])
    assert training.settings["init"]["token_coverage"] == 1.0  # the same texts: every word known


def test_the_command_line_fine_tunes_and_records_the_source(source, tmp_path):
    write_csv(tmp_path / "binary.csv", [(text, "money" if label == "billing" else "other")
                                        for text, label in tickets(300, seed=4)], header=("text", "label"))
    out = tmp_path / "ft"
    code = main(["train", "classify", "--data", str(tmp_path / "binary.csv"), "--out", str(out), "--init",
                 str(source / "source"), "--epochs", "2", "--quiet", "--engine", "numpy"])
    assert code == 0
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["init"]["task"] == "classify" and settings["init"]["bundle"] == "source"
    model = rnnkit.load(out)
    assert model.labels == ("money", "other") and model.predict(["refund my invoice"])[0]["label"] == "money"


def test_bad_sources_are_refused_in_one_line(source, tmp_path, capsys):
    write_csv(tmp_path / "t.csv", tickets(50, seed=1), header=("text", "label"))
    common = ["train", "classify", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "o"), "--quiet"]
    assert main([*common, "--init", str(tmp_path / "nowhere")]) == 2
    assert main([*common, "--init", str(source / "source"), "--embeddings", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert "leave out --embeddings" in err and "Traceback" not in err
    (tmp_path / "text.txt").write_text("abc abd abe " * 200)
    assert main(["train", "charlm", "--text", str(tmp_path / "text.txt"), "--out", str(tmp_path / "lm"),
                 "--epochs", "1", "--hidden", "8", "--seq-len", "16", "--quiet", "--engine", "numpy",
                 "--sample-every", "0"]) == 0
    capsys.readouterr()
    with pytest.raises(InputError, match="holds a charlm model"):
        PretrainedEncoder.load(tmp_path / "lm")
    assert main([*common, "--init", str(tmp_path / "lm")]) == 2
    assert "holds a charlm model" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_gradual_unfreezing_trains_only_the_head_in_the_first_epoch(source, tmp_path, engine):
    """ULMFiT's fine-tuning options from the command line: after one epoch the encoder is still the source's."""
    if engine == "torch":
        pytest.importorskip("torch")
    out = tmp_path / "ft"
    code = main(["train", "classify", "--data", str(source / "tickets.csv"), "--out", str(out), "--init",
                 str(source / "source"), "--epochs", "1", "--quiet", "--engine", engine, "--gradual-unfreeze",
                 "--layer-lr-decay", "2.6", "--lr-schedule", "linear", "--warmup", "0.1"])
    assert code == 0
    tuned, pretrained = load_bundle(out), load_bundle(source / "source")
    for name, value in pretrained.tensors.items():
        if name.startswith(("embedding.", "rnn.")):
            np.testing.assert_array_equal(tuned.tensors[name], value, err_msg=name)
    assert not np.array_equal(tuned.tensors["head.weight"], pretrained.tensors["head.weight"])
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["gradual_unfreeze"] is True and train["layer_lr_decay"] == 2.6 and train["lr_schedule"] == "linear"

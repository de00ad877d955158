"""Text classification on a user's own data: files in, a bundle with its report out; the CLI and rnnkit.train."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

import rnnkit
from rnnkit.cli import main
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.labelled import read_labelled
from rnnkit.errors import ConfigError
from rnnkit.tasks.classify import ClassifySettings, ClassifyTraining

TOPICS = {"billing": "invoice charge refund payment card price", "login": "password login account locked reset email",
          "crash": "crash freeze error bug slow screen"}
FILLER = "the app my please when i it and is was this after today again help".split()
SMALL = ["--hidden", "16", "--embedding-dim", "16", "--batch-size", "32", "--lr", "0.01", "--quiet"]


def tickets(count: int, seed: int, tags: bool = False) -> list[tuple[str, str]]:
    """Generated support tickets: three topic words among filler; the topic is the label (tags: 1-2 topics)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        labels = rng.sample(sorted(TOPICS), rng.choice((1, 2)) if tags else 1)
        words = [rng.choice(TOPICS[label].split()) for label in labels for _ in range(3)]
        words += [rng.choice(FILLER) for _ in range(8)]
        rng.shuffle(words)
        rows.append((" ".join(words), "|".join(labels)))
    return rows


def write_csv(path, rows, header=("message", "team")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-class bundle trained from the command line on a CSV, with a held-out file."""
    root = tmp_path_factory.mktemp("classify")
    write_csv(root / "train.csv", tickets(600, seed=0))
    write_csv(root / "held.csv", tickets(150, seed=1))
    code = main(["train", "classify", "--data", str(root / "train.csv"), "--label-field", "team", "--out",
                 str(root / "run"), "--epochs", "6", *SMALL])
    assert code == 0
    return root


def test_the_command_line_trains_on_a_csv_and_the_bundle_reports_on_itself(trained):
    run = trained / "run"
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["split"] == "validation" and evaluation["count"] == 60
    assert evaluation["accuracy"] > 0.8 and evaluation["report"]["confusion_matrix"]  # chance: 1/3
    assert set(evaluation["report"]["per_class"]) == set(TOPICS)
    card = (run / "README.md").read_text()
    assert "multi-class text classifier" in card and "`billing`, `crash`, `login`" in card
    assert "validation split (no test split was given" in card and "message" in card
    assert (run / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    assert (run / "history.csv").read_text().splitlines()[0].startswith("epoch,")


def test_evaluate_prints_the_report_and_worst_mistakes_and_saves_the_matrix(trained, capsys, tmp_path):
    plot = tmp_path / "cm.png"
    assert main(["evaluate", str(trained / "run"), "--data", str(trained / "held.csv"), "--worst", "2",
                 "--plot", str(plot), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "macro avg" in out and "confusion matrix" in out and "worst 2" in out
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert main(["evaluate", str(trained / "run"), "--data", str(trained / "held.csv"), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 150 and result["accuracy"] > 0.8 and len(result["worst"]) == 10
    losses = [m["loss"] for m in result["worst"]]
    assert losses == sorted(losses, reverse=True)
    (tmp_path / "mine.png").write_bytes(b"not rnnkit's")  # a file rnnkit did not write is never replaced
    assert main(["evaluate", str(trained / "run"), "--data", str(trained / "held.csv"), "--plot",
                 str(tmp_path / "mine.png")]) == 2
    assert (tmp_path / "mine.png").read_bytes() == b"not rnnkit's"


def test_predict_answers_every_text_in_order_with_one_schema(trained, capsys):
    model = rnnkit.load(trained / "run")
    answers = model.predict(["my password is locked", "", "zzz qqq", "refund my card payment"], top=2)
    assert [a.get("label") for a in answers] == ["login", None, None, "billing"]
    assert "error" in answers[1] and "error" in answers[2]
    first = answers[0]
    assert set(first["probabilities"]) == set(TOPICS) and sum(first["probabilities"].values()) == pytest.approx(1)
    assert first["score"] == max(first["probabilities"].values()) and len(first["top"]) == 2
    assert main(["predict", str(trained / "run"), "crash error on the screen", "--top", "3"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("crash\t") and line.count("\t") == 2
    explained = model.explain("my password is locked after the reset", top_k=3)
    assert explained["explained"] == "login" and len(explained["words"]) == 3
    assert explained["words"][0]["word"] in TOPICS["login"].split()


def test_folder_of_classes_with_a_test_split_reports_on_the_test_split(tmp_path):
    for split, seed, count in (("train", 0, 400), ("test", 2, 80)):
        for number, (text, label) in enumerate(tickets(count, seed)):
            folder = tmp_path / split / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{number}.txt").write_text(text)
    model = rnnkit.train("classify", data=tmp_path / "train", test=tmp_path / "test", out=tmp_path / "run",
                         epochs=5, hidden=16, embedding_dim=16, batch_size=32, lr=0.01, quiet=True, engine="numpy")
    assert model.labels == ("billing", "crash", "login") and len(model.history) == 5
    evaluation = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert evaluation["split"] == "test" and evaluation["count"] == 80 and evaluation["accuracy"] > 0.8
    assert "held-out test split" in (tmp_path / "run" / "README.md").read_text()


def test_multi_label_tags_from_json_lines(tmp_path):
    with open(tmp_path / "tags.jsonl", "w") as f:
        for text, tags in tickets(600, seed=3, tags=True):
            f.write(json.dumps({"text": text, "tags": tags.split("|")}) + "\n")
    model = rnnkit.train("classify", data=tmp_path / "tags.jsonl", multi_label="|", out=tmp_path / "run",
                         epochs=8, hidden=16, embedding_dim=16, batch_size=32, lr=0.01, quiet=True, engine="numpy")
    assert model.settings.kind == "multilabel" and model.bundle.config.output_size == 3
    answer = model.predict("refund the invoice and my password reset email")[0]
    assert set(answer["labels"]) == {"billing", "login"}, answer
    assert json.loads((tmp_path / "run" / "evaluation.json").read_text())["report"]["micro_f1"] > 0.8


@pytest.mark.parametrize("kind_labels", [("billing", "login"), ("billing", "crash", "login")])
def test_both_engines_compute_the_same_weighted_loss_and_gradients(kind_labels):
    """The torch and numpy parts of one task, with balanced class weights, agree on a batch's loss."""
    import torch

    rows = [(t, label) for t, label in tickets(200, seed=4) if label in kind_labels]
    rows += [rows[0]] * 40  # imbalance, so the weights differ from 1
    data = read_labelled_rows(rows)
    settings = ClassifySettings(labels=kind_labels, class_weights="balanced", maxlen=30, vocab_size=None)
    training = ClassifyTraining(data, ModelConfig(vocab_size=1, cell="lstm", embedding_dim=8, hidden_size=8),
                                settings, batch_size=64, validation_fraction=0.2)
    training.setup(np.random.default_rng(0))
    assert training.class_weights is not None and np.ptp(training.class_weights) > 0.1
    numpy_parts = training.numpy_parts(TrainConfig())
    torch_parts = training.torch_parts(TrainConfig(), torch.device("cpu"))
    from rnnkit.torch_engine import load_tensors
    load_tensors(torch_parts.model, numpy_parts.tensors(numpy_parts.model))
    batch = training.batches(1, np.random.default_rng(1))[0]
    torch_parts.model.eval()
    loss_torch, count, sums = torch_parts.step(torch_parts.model, batch)
    loss_numpy, count_numpy, sums_numpy, _ = numpy_parts.step(numpy_parts.model, batch, None)
    assert count == count_numpy and sums == sums_numpy
    assert loss_numpy == pytest.approx(loss_torch.item(), rel=1e-5)


def read_labelled_rows(rows):
    from rnnkit.data.labelled import LabelledTexts
    return LabelledTexts([t for t, _ in rows], [label for _, label in rows], "rows")


@pytest.mark.parametrize("argv, message", [
    (["--data", "{one}"], "has only one label ('x')"),
    (["--data", "{train}"], "no label column found among 'message', 'team'; name it with --label-field"),
    (["--data", "{train}", "--label-field", "team", "--valid", "{train}"], "--valid goes with --train"),
    ([], "give the labelled texts with --data"),
])
def test_bad_data_is_one_line_and_nothing_is_written(tmp_path, capsys, argv, message):
    write_csv(tmp_path / "train.csv", tickets(50, seed=0))
    write_csv(tmp_path / "one.csv", [("a text", "x"), ("another text", "x")], header=("text", "label"))
    files = {"train": str(tmp_path / "train.csv"), "one": str(tmp_path / "one.csv")}
    code = main(["train", "classify", *[a.format(**files) for a in argv], "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_rnnkit_train_names_unknown_and_missing_options(tmp_path):
    with pytest.raises(ConfigError, match="no option 'epoch'; did you mean epochs"):
        rnnkit.train("classify", data="x.csv", out=tmp_path / "run", epoch=3)
    with pytest.raises(ConfigError, match="needs pairs or task"):
        rnnkit.train("seq2seq", out=tmp_path / "run")
    with pytest.raises(ConfigError, match="unknown task 'tagging'"):
        rnnkit.train("tagging", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_labels_the_model_never_saw_are_named(trained):
    model = rnnkit.load(trained / "run")
    with pytest.raises(Exception, match="'refunds'"):
        model.evaluate(["refund my card"], ["refunds"])
    assert read_labelled(trained / "held.csv", label_field="team").classes == sorted(TOPICS)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_a_bag_of_words_trains_from_the_command_line_and_loads_like_any_classifier(tmp_path, capsys, engine):
    """--model bow: the one_to_one model (mean of the embeddings -> dense -> head), trained by either engine;
    word order is all it cannot see, so the topic words are enough here."""
    write_csv(tmp_path / "train.csv", tickets(600, seed=0))
    write_csv(tmp_path / "held.csv", tickets(150, seed=1))
    run = tmp_path / "bow"
    assert main(["train", "classify", "--data", str(tmp_path / "train.csv"), "--label-field", "team", "--out",
                 str(run), "--epochs", "6", "--model", "bow", "--engine", engine, *SMALL]) == 0
    capsys.readouterr()
    config = json.loads((run / "config.json").read_text())["model"]
    assert config["architecture"] == "one_to_one" and not config["bidirectional"] and config["pooling"] == "mean"
    assert "mean over the words (bag of words) -> Dense(16), tanh" in (run / "README.md").read_text()
    assert main(["evaluate", str(run), "--data", str(tmp_path / "held.csv"), "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.8  # chance: 1/3
    model, on_torch = rnnkit.load(run), rnnkit.load(run, engine="torch")
    texts = ["refund my card payment", "my password is locked", "the screen froze after a crash"]
    assert [a["label"] for a in model.predict(texts)] == ["billing", "login", "crash"]
    for ours, theirs in zip(model.predict(texts), on_torch.predict(texts)):
        assert ours["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-5)
    # order is invisible to it: the same words in another order get the same answer
    assert model.predict("payment refund card")[0]["probabilities"] == \
        pytest.approx(model.predict("card refund payment")[0]["probabilities"], abs=1e-6)
    assert model.explain("my password is locked after the reset", top_k=2)["explained"] == "login"
    capsys.readouterr()
    assert main(["train", "classify", "--data", str(tmp_path / "train.csv"), "--label-field", "team", "--out",
                 str(tmp_path / "from-bow"), "--init", str(run), "--quiet"]) == 2
    assert "holds a bag of words (--model bow), which has no recurrent layers" in capsys.readouterr().err


def test_a_bag_of_words_refuses_init_in_one_line(trained, tmp_path, capsys):
    code = main(["train", "classify", "--data", str(trained / "train.csv"), "--label-field", "team", "--out",
                 str(tmp_path / "run"), "--model", "bow", "--init", str(trained / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--model bow has no recurrent layers; leave out --init" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()

"""TensorBoard event files in OUT/tensorboard/ while training, when tensorboard is installed."""

from __future__ import annotations

import builtins
import csv

import pytest

import rnnkit

pytest.importorskip("torch")
pytest.importorskip("tensorboard")


def write_data(path):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(300):
            writer.writerow([("great fine good " if i % 2 else "awful bad poor ") * 2, "pos" if i % 2 else "neg"])


def scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_every_epoch_and_the_running_loss_are_logged_and_overwrite_starts_afresh(tmp_path):
    write_data(tmp_path / "data.csv")
    options = dict(data=tmp_path / "data.csv", out=tmp_path / "run", hidden=8, embedding_dim=8, batch_size=8,
                   quiet=True, engine="torch")
    model = rnnkit.train("classify", epochs=2, **options)
    logged = scalars(tmp_path / "run" / "tensorboard")
    for tag in ("train/loss", "val/loss", "val/accuracy", "epoch/learning_rate"):
        assert len(logged[tag]) == 2, tag
    assert [value for _, value in logged["val/loss"]] == pytest.approx([e["val_loss"] for e in model.history])
    steps = [step for step, _ in logged["train/loss_running"]]
    assert steps and all(step % 20 == 0 for step in steps)

    rnnkit.train("classify", epochs=1, overwrite=True, **options)
    assert len(scalars(tmp_path / "run" / "tensorboard")["val/loss"]) == 1  # the replaced run's events are gone


def test_without_tensorboard_nothing_is_written(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    write_data(tmp_path / "data.csv")
    rnnkit.train("classify", data=tmp_path / "data.csv", out=tmp_path / "run", epochs=1, hidden=8, embedding_dim=8,
                 quiet=True, engine="torch")
    assert (tmp_path / "run" / "model.safetensors").is_file() and not (tmp_path / "run" / "tensorboard").exists()

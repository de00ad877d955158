"""A run directory is rnnkit's or refused; an existing run is never replaced unless asked; one training at a time;
a resume must have the settings and data of the run it continues (issue: nothing lost, round two)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rnnkit.cli import main
from rnnkit.training import rundir

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 60


def charlm(out, *extra, text=None):
    return ["train", "charlm", "--text", str(text), "--out", str(out), "--epochs", "1", "--hidden", "8",
            "--layers", "1", "--embedding-dim", "4", "--batch-size", "4", "--seq-len", "16", "--engine", "numpy",
            "--sample-every", "0", "--quiet", *extra]


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_the_same_command_again_never_replaces_a_run(tmp_path, text, capsys):
    out = tmp_path / "run"
    assert main(charlm(out, text=text)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(charlm(out, text=text)) == 2
    assert "already holds a run (its checkpoint lets --resume continue it); add --resume" in one_line(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert main(charlm(out, "--overwrite", text=text)) == 0  # said so: replaced
    assert main(charlm(out, "--overwrite", "--resume", text=text)) == 2
    assert "give one of them" in capsys.readouterr().err


def test_a_folder_of_the_users_files_is_refused_even_with_overwrite(tmp_path, text, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "settings"}')
    (out / "loss.png").write_bytes(b"my plot")
    for extra in ((), ("--overwrite",)):
        assert main(charlm(out, *extra, text=text)) == 2
        assert "holds files rnnkit did not write (config.json, loss.png)" in one_line(capsys)
    assert (out / "config.json").read_text() == '{"my": "settings"}' and (out / "loss.png").read_bytes() == b"my plot"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "loss.png"]


def test_a_second_training_into_the_same_directory_is_refused_at_once(tmp_path, text, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with rundir.locked(out):  # another training holds the directory
        assert main(charlm(out, text=text)) == 2
        assert "another training is writing into" in one_line(capsys)
    # and from another process, while this one holds the lock
    with rundir.locked(out):
        done = subprocess.run([sys.executable, "-m", "rnnkit.cli", *charlm(out, text=text)], capture_output=True,
                              text=True, timeout=300)
    assert done.returncode == 2 and "another training is writing into" in done.stderr


@pytest.mark.parametrize("change", [["--seq-len", "8"], ["--dropout", "0.1"], ["--hidden", "12"], "text"])
def test_resume_refuses_settings_or_data_that_change_the_result(tmp_path, text, capsys, change):
    out = tmp_path / "run"
    assert main(charlm(out, "--precision", "auto", text=text)) == 0
    capsys.readouterr()
    other = text
    if change == "text":  # the same characters, another text
        other = tmp_path / "other.txt"
        other.write_text(TEXT.replace("cat", "act"))
        change = []
    argv = charlm(out, "--resume", "--epochs", "2", "--precision", "auto", text=other) + list(change)
    assert main(argv) == 3
    err = one_line(capsys)
    assert "--resume needs the options and data of the interrupted run" in err
    expected = {"--seq-len": "seq_len", "--dropout": "dropout", "--hidden": "hidden"}.get(change[0] if change else None)
    if expected:
        assert expected in err
    elif not change:
        assert "the training data" in err


def test_resume_may_read_the_same_text_from_another_path(tmp_path, text):
    out = tmp_path / "run"
    assert main(charlm(out, text=text)) == 0
    moved = tmp_path / "moved.txt"
    moved.write_text(TEXT)
    assert main(charlm(out, "--resume", "--epochs", "2", text=moved)) == 0

"""Slow: one short epoch on the real IMDB tarball. Run with RNNKIT_IMDB=../shared/data/aclImdb_v1.tar.gz."""

import json
import os

import pytest

from rnnkit.cli import main

IMDB = os.environ.get("RNNKIT_IMDB")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not IMDB or not os.path.exists(IMDB),
                                 reason="set RNNKIT_IMDB to aclImdb_v1.tar.gz (e.g. ../shared/data/aclImdb_v1.tar.gz)")]


def test_one_short_epoch_on_real_imdb_is_well_above_chance(tmp_path, capsys):
    out = tmp_path / "imdb"
    assert main(["train", "imdb", "--data", IMDB, "--out", str(out), "--epochs", "1", "--maxlen", "200",
                 "--vocab-size", "10000", "--hidden", "64", "--embedding-dim", "64", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", IMDB, "--engine", "torch", "--json", "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["count"] == 25000
    assert metrics["accuracy"] > 0.78, metrics

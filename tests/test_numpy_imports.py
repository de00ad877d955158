"""The numpy engine is the light runtime: importing it, and `rnnkit predict --engine numpy`, never load torch."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np

from rnnkit.bundle import save_bundle
from rnnkit.config import ModelConfig
from rnnkit.data.vocab import Vocab
from rnnkit.numpy_engine import init_parameters


def _imported_modules(*args: str) -> list[str]:
    """Names of every module `python -X importtime ARGS` imported (importtime writes one line each to stderr)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")
            and "|" in line][1:]  # the first line is the header


def test_importing_the_numpy_engine_loads_no_torch():
    modules = _imported_modules("-c", "import rnnkit.numpy_engine")
    assert "rnnkit.numpy_engine.models" in modules and "rnnkit.numpy_engine.seq2seq" in modules
    assert not [m for m in modules if m.split(".")[0] == "torch"]


def test_predict_with_the_numpy_engine_loads_no_torch(tmp_path):
    vocab = Vocab.build(Counter({"good": 5, "bad": 5, "film": 3}))
    config = ModelConfig(vocab_size=len(vocab), cell="lstm", embedding_dim=4, hidden_size=3, bidirectional=True,
                         pooling="mean_max")
    save_bundle(tmp_path / "bundle", "sentiment", config, vocab.to_json(),
                init_parameters(config, np.random.default_rng(0)), settings={"maxlen": 20})
    modules = _imported_modules("-m", "rnnkit.cli", "predict", "--engine", "numpy", str(tmp_path / "bundle"),
                                "a good film")
    assert "rnnkit.numpy_engine.recurrent" in modules  # the model really ran on the numpy engine
    assert not [m for m in modules if m.split(".")[0] == "torch"]

"""bench/reference_server.py, the FastAPI + torch server bench/serve.py measures rnnkit serve against, runs the
same model: its probabilities match rnnkit's predictor for every pooling and cell it claims."""

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from rnnkit.bundle import save_bundle  # noqa: E402
from rnnkit.config import ModelConfig  # noqa: E402
from rnnkit.data.vocab import Vocab  # noqa: E402
from rnnkit.numpy_engine import init_parameters  # noqa: E402
from rnnkit.tasks import load_predictor  # noqa: E402
from rnnkit.tasks.classify import ClassifySettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["a great film, really great", "dull and boring. I left early", "great great dull", "zzz great unknown words"]


def _reference_app(bundle: Path, monkeypatch, precision: str = "fp32"):
    monkeypatch.setenv("RNNKIT_REFERENCE_BUNDLE", str(bundle))
    monkeypatch.setenv("RNNKIT_REFERENCE_THREADS", "1")
    monkeypatch.setenv("RNNKIT_REFERENCE_PRECISION", precision)
    spec = importlib.util.spec_from_file_location("reference_server_under_test", ROOT / "bench" / "reference_server.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module.app


@pytest.mark.parametrize("cell,bidirectional,pooling,labels,precision", [
    ("gru", True, "mean_max", ("negative", "positive"), "fp32"),
    ("lstm", False, "last", ("negative", "positive"), "fp32"),
    ("lstm", True, "last", ("a", "b", "c"), "fp32"),
    ("gru", False, "max", ("a", "b", "c"), "fp32"),
    ("gru", True, "mean_max", ("negative", "positive"), "bf16"),
])
def test_reference_server_answers_what_rnnkit_predicts(tmp_path, monkeypatch, cell, bidirectional, pooling, labels,
                                                       precision):
    """In fp32 to 1e-5; under bf16 autocast to bench/serve.py's 5e-2 (bfloat16 keeps 8 bits of mantissa)."""
    words = Counter(w for t in TEXTS for w in t.lower().replace(".", " .").replace(",", " ,").split())
    vocab = Vocab.build(words, max_size=100)
    config = ModelConfig(vocab_size=len(vocab), cell=cell, embedding_dim=8, hidden_size=6, num_layers=2,
                         bidirectional=bidirectional, pooling=pooling, output_size=1 if len(labels) == 2 else 3)
    settings = ClassifySettings(labels=labels, maxlen=5)
    bundle = save_bundle(tmp_path / "bundle", "classify", config, vocab.to_json(),
                         init_parameters(config, np.random.default_rng(0)), settings=settings.to_json())
    client = TestClient(_reference_app(bundle, monkeypatch, precision))
    predictor = load_predictor(bundle, engine="numpy")
    tolerance = 1e-5 if precision == "fp32" else 5e-2
    differences = []
    for text, expected in zip(TEXTS, predictor.predict(TEXTS)):
        got = client.post("/v1/predict", json={"text": text}).json()["prediction"]
        if precision == "fp32":
            assert got["label"] == expected["label"]
        for label in labels:
            assert got["probabilities"][label] == pytest.approx(expected["probabilities"][label], abs=tolerance)
            differences.append(abs(got["probabilities"][label] - expected["probabilities"][label]))
    if precision == "bf16":  # the autocast is on: bfloat16 rounding shows
        assert max(differences) > 1e-6

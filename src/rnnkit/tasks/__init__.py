"""Tasks: what each kind of model trains on, evaluates and predicts.

`load_predictor(path, engine)` opens any bundle as the right predictor for its task.
"""

from __future__ import annotations

from rnnkit.bundle import load_bundle
from rnnkit.errors import BundleError

ENGINES = ("numpy", "torch")


def load_predictor(path, engine: str = "numpy"):
    """A ready-to-use model for the bundle at `path` (sentiment -> SentimentModel, ...)."""
    if engine not in ENGINES:
        raise BundleError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    bundle = load_bundle(path)
    if bundle.task == "sentiment":
        from rnnkit.tasks.sentiment import SentimentModel

        return SentimentModel(bundle, engine)
    if bundle.task == "seq2seq":
        from rnnkit.tasks.seq2seq import Seq2SeqModel

        return Seq2SeqModel(bundle, engine)
    if bundle.task == "charlm":
        from rnnkit.tasks.charlm import CharLM

        return CharLM(bundle, engine)
    raise BundleError(f"{path} holds a {bundle.task!r} model, which this rnnkit cannot open yet")

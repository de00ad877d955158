"""What every task's predictor answers, and the error for a bundle used with the wrong operation.

A predictor is a loaded bundle ready to use (`rnnkit.load(path)` returns one).
Every one has:

    Predictor.load(bundle, engine)   build it from a loaded `Bundle` on "numpy" or "torch"
    .task                            the bundle's task ("sentiment", "classify", "charlm", "wordlm", "seq2seq", "condlm")
    .operations                      what it does, by name: a subset of OPERATIONS
    .bundle, .engine                 the bundle it was loaded from, the engine it runs on
    .describe()                      a JSON-able summary: task, engine, model, settings, metrics

and one method per operation it lists (`predict`, `explain`, `evaluate`,
`generate`, `translate`). The command line and the service ask `supports`
before they call one, so a bundle of another task gets one clear sentence
naming what it can do instead of an AttributeError.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from rnnkit.bundle import Bundle
from rnnkit.errors import InputError

OPERATIONS = ("predict", "explain", "evaluate", "generate", "translate")


@runtime_checkable
class Predictor(Protocol):
    task: ClassVar[str]
    operations: ClassVar[tuple[str, ...]]
    bundle: Bundle
    engine: str

    @classmethod
    def load(cls, bundle: Bundle, engine: str = "numpy") -> "Predictor": ...

    def describe(self) -> dict[str, Any]: ...


class WrongTask(InputError):
    """An operation asked of a bundle whose task does not do it (exit 2, one line)."""


def describe(predictor: Predictor) -> dict[str, Any]:
    """The summary every predictor's `describe()` starts from."""
    bundle = predictor.bundle
    return {"task": predictor.task, "engine": predictor.engine, "bundle": str(bundle.path),
            "model": bundle.config.describe(), "config": bundle.config.to_dict(), "settings": bundle.settings,
            "metrics": bundle.metrics, "operations": list(predictor.operations)}


class BasePredictor:
    """What every predictor shares: `load`, `describe`, and a clear error for an operation of another task.

    Subclasses set `task` and `operations`, and take (bundle, engine) in `__init__`.
    """

    task: ClassVar[str]
    operations: ClassVar[tuple[str, ...]]

    @classmethod
    def load(cls, bundle: Bundle, engine: str = "numpy"):
        return cls(bundle, engine)

    def describe(self) -> dict[str, Any]:
        return describe(self)

    @property
    def history(self) -> list[dict]:
        """The training run's metrics, one dict per epoch (from the bundle's history.json; [] if it has none)."""
        import json

        path = self.bundle.path / "history.json"
        try:
            return json.loads(path.read_text())["epochs"] if path.is_file() else []
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def __getattr__(self, name: str):
        # only reached for names the object lacks: an operation of another task gets one sentence, not AttributeError
        if name in OPERATIONS:
            from rnnkit.tasks import require

            require(self, name, f"{name}()", {op: f"{op}()" for op in OPERATIONS})
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

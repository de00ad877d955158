"""Tasks: what each kind of model trains on, evaluates and predicts; one package per task.

    tasks/<task>/settings.py   what the bundle saves about text and batches
    tasks/<task>/data.py       reading the data and making batches
    tasks/<task>/training.py   its parts for `rnnkit.training.fit` (both engines)
    tasks/<task>/predictor.py  the loaded model: the operations of its task (see `protocol`)

`load_predictor(path, engine)` opens any bundle as the predictor of its task, and
`require` turns an operation the bundle's task does not do into one sentence
naming the task that does and what this bundle can do instead.
"""

from __future__ import annotations

import importlib

from rnnkit.bundle import load_bundle
from rnnkit.errors import BundleError
from rnnkit.tasks.protocol import OPERATIONS, Predictor, WrongTask

ENGINES = ("numpy", "torch")

# The one table of tasks: the bundle's task -> its predictor class (imported when a bundle of it is opened).
PREDICTORS = {
    "sentiment": "rnnkit.tasks.sentiment.predictor:SentimentModel",
    "classify": "rnnkit.tasks.classify.predictor:ClassifierModel",
    "charlm": "rnnkit.tasks.charlm.predictor:CharLM",
    "wordlm": "rnnkit.tasks.wordlm.predictor:WordLM",
    "seq2seq": "rnnkit.tasks.seq2seq.predictor:Seq2SeqModel",
    "condlm": "rnnkit.tasks.condlm.predictor:ConditionalLM",
}


def predictor_class(task: str) -> type:
    module, name = PREDICTORS[task].split(":")
    return getattr(importlib.import_module(module), name)


def tasks_doing(operation: str) -> list[str]:
    """The tasks whose predictors support `operation` (one of OPERATIONS)."""
    return [task for task in PREDICTORS if operation in predictor_class(task).operations]


def load_predictor(path, engine: str = "numpy") -> Predictor:
    """A ready-to-use model for the bundle at `path` (sentiment -> SentimentModel, ...)."""
    if engine not in ENGINES:
        raise BundleError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    bundle = load_bundle(path)
    if bundle.task not in PREDICTORS:
        raise BundleError(f"{path} holds a {bundle.task!r} model, which this rnnkit cannot open "
                          f"(it opens {', '.join(PREDICTORS)})")
    return predictor_class(bundle.task).load(bundle, engine)


def require(predictor: Predictor, operation: str, asked_as: str, how: dict[str, str]) -> None:
    """Raise WrongTask (one line, exit 2) unless `predictor` supports `operation`.

    `asked_as` is how the user asked ("rnnkit translate", "POST /v1/translate"); `how` maps each
    operation to how a user asks for it, so the message names what fits this bundle instead.
    """
    if operation in predictor.operations:
        return
    fitting = [how[op] for op in predictor.operations if op in how]
    instead = f"; for this bundle use {', '.join(dict.fromkeys(fitting))}" if fitting else ""
    doing = tasks_doing(operation)
    kinds = " or ".join(doing) if len(doing) < 3 else f"{', '.join(doing[:-1])} or {doing[-1]}"
    raise WrongTask(f"{predictor.bundle.path} holds a {predictor.task} model, but {asked_as} needs a "
                    f"{kinds} bundle{instead}")


__all__ = ["ENGINES", "OPERATIONS", "PREDICTORS", "Predictor", "WrongTask", "load_predictor", "predictor_class",
           "require", "tasks_doing"]

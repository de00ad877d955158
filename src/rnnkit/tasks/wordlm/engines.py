"""A word LM's model on either engine behind two functions: generation's StepFn (`rnnkit.tasks.lm`) and
scoring's ScoreFn, which asks only for the log-probabilities of the targets (an adaptive softmax then
never computes the other 30,000)."""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from rnnkit.bundle import Bundle
from rnnkit.tasks.lm import StepFn, bundle_model, numpy_step, torch_step

# (ids (N, T), targets (N, T), state or None) -> (log p(target) (N, T), state); the state is engine-specific.
ScoreFn = Callable[[np.ndarray, np.ndarray, object], tuple[np.ndarray, object]]


def numpy_scorer(model) -> ScoreFn:
    """A ScoreFn over a numpy_engine ManyToMany model (no dropout; one call at a time: its buffers are shared)."""
    lock = threading.Lock()

    def score(ids: np.ndarray, targets: np.ndarray, state):
        with lock:
            _, log_p, final = model.loss(ids, targets, state, train=False)
        return log_p, final

    return score


def torch_scorer(module) -> ScoreFn:
    """A ScoreFn over a torch ManyToMany module (put it in eval mode first), on the module's device."""
    import torch

    device = next(module.parameters()).device

    def score(ids: np.ndarray, targets: np.ndarray, state):
        with torch.no_grad():
            log_p, final = module(torch.from_numpy(_long(ids)).to(device), state,
                                  targets=torch.from_numpy(_long(targets)).to(device))
        return log_p.double().cpu().numpy(), final

    return score


def bundle_functions(bundle: Bundle, engine: str) -> tuple[StepFn, ScoreFn]:
    """The bundle's model on `engine` ("numpy": no torch import, or "torch") as (StepFn, ScoreFn)."""
    model = bundle_model(bundle, engine)
    if engine == "numpy":
        return numpy_step(model), numpy_scorer(model)
    return torch_step(model), torch_scorer(model)


def _long(ids: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(ids, dtype=np.int64)

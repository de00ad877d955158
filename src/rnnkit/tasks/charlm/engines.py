"""A character LM's model on either engine behind one step function: (ids, state) -> (logits, state)."""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from rnnkit.bundle import Bundle
from rnnkit.errors import InputError

# A step function runs the model on a chunk: (ids (N, T) int64, state or None) -> (logits (N, T, V), state).
# The state is engine-specific and opaque to the callers.
StepFn = Callable[[np.ndarray, object], tuple[np.ndarray, object]]


def numpy_step(model) -> StepFn:
    """A StepFn over a numpy_engine ManyToMany model (inference: no dropout).

    Safe to call from several threads: the model's layers write into buffers they keep between calls
    (`numpy_engine.recurrent.Workspace`), so one call runs at a time; what it returns (new logits and a
    stacked copy of the state) is the caller's own. Without the lock, two generations with the same
    seed in two threads gave different text.
    """
    lock = threading.Lock()

    def step(ids: np.ndarray, state):
        with lock:
            logits, final = model.forward(ids, state, train=False)
        return logits, final

    return step


def torch_step(module) -> StepFn:
    """A StepFn over a torch ManyToMany module (put it in eval mode first); the state stays torch."""
    import torch

    def step(ids: np.ndarray, state):
        with torch.no_grad():
            logits, final = module(torch.from_numpy(np.ascontiguousarray(ids)), state)
        return logits.float().cpu().numpy(), final

    return step


def bundle_step(bundle: Bundle, engine: str) -> StepFn:
    """The StepFn of a bundle's model on `engine` ("numpy": no torch import; or "torch")."""
    if engine == "numpy":
        from rnnkit.numpy_engine import build_model

        return numpy_step(build_model(bundle.config, bundle.tensors))
    if engine == "torch":
        from rnnkit.optional import import_torch

        import_torch()
        from rnnkit.torch_engine import build_model, load_tensors

        return torch_step(load_tensors(build_model(bundle.config), bundle.tensors).eval())
    raise InputError(f"unknown engine {engine!r}; use numpy or torch")

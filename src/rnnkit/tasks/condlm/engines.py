"""A conditional LM's model on either engine behind three numpy-in, numpy-out functions.

    start(features (N, K)) -> state               each label's initial state (`OneToMany.initial_state`), kept
                                                  with its one-hot vector: a model conditioned at every step
                                                  reads the label again at each step (`OneToMany.decode`)
    step(ids (N, T), state) -> (logits, state)    `rnnkit.tasks.lm.StepFn`: reading on from a state
    score(batch) -> log p(target) (N, T)          validation (0 at padding)

A state is the pair (features, the model's recurrent state), opaque to the callers. The numpy engine never
imports torch; the torch engine is imported only when asked for.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from rnnkit.tasks.condlm.data import TextBatch, one_hot
from rnnkit.tasks.lm import StepFn

StartFn = Callable[[np.ndarray], object]
ScoreFn = Callable[[TextBatch], np.ndarray]


def numpy_functions(model, labels: int) -> tuple[StartFn, StepFn, ScoreFn]:
    """(start, step, score) over a numpy_engine OneToMany model (no dropout; one call at a time: the
    model's layers share buffers between calls)."""
    lock = threading.Lock()

    def start(features: np.ndarray):
        with lock:
            return features, model.initial_state(features)

    def step(ids: np.ndarray, state):
        features, recurrent = state
        with lock:
            logits, final = model.decode(ids, recurrent, features, train=False)
        return logits, (features, final)

    def score(batch: TextBatch) -> np.ndarray:
        with lock:
            return model.loss(one_hot(batch.labels, labels), batch.inputs, batch.targets, batch.mask)[1]

    return start, step, score


def torch_functions(module, labels: int) -> tuple[StartFn, StepFn, ScoreFn]:
    """(start, step, score) over a torch OneToMany module (put it in eval mode first); states stay torch."""
    import torch

    device = next(module.parameters()).device

    def start(features: np.ndarray):
        features = torch.from_numpy(features).to(device)
        with torch.no_grad():
            return features, module.initial_state(features)

    def step(ids: np.ndarray, state):
        features, recurrent = state
        with torch.no_grad():
            logits, final = module.decode(torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).to(device),
                                          recurrent, features)
        return logits.float().cpu().numpy(), (features, final)

    def score(batch: TextBatch) -> np.ndarray:
        with torch.no_grad():
            log_p, _ = module(torch.from_numpy(one_hot(batch.labels, labels)).to(device),
                              torch.from_numpy(batch.inputs).to(device), targets=torch.from_numpy(batch.targets).to(device))
        return log_p.double().cpu().numpy() * batch.mask

    return start, step, score


def bundle_functions(model, engine: str, labels: int) -> tuple[StartFn, StepFn, ScoreFn]:
    """The functions of a model from `rnnkit.tasks.lm.bundle_model` on `engine`."""
    return numpy_functions(model, labels) if engine == "numpy" else torch_functions(model, labels)


def score_batches(score: ScoreFn, batches: list[TextBatch]) -> dict:
    """-log p of every real target of `batches`: loss (nats/token), perplexity, tokens scored."""
    import math

    total, count = 0.0, 0
    for batch in batches:
        total -= float(np.sum(score(batch)[batch.mask], dtype=np.float64))
        count += int(batch.mask.sum())
    loss = total / max(count, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "tokens": count}

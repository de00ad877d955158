"""Scoring a text with a character LM: nats and bits per character, with the state carried.

Losses are natural-log (nats) per character; bits per character = nats / ln 2.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.data.text import UNK_ID
from rnnkit.errors import InputError
from rnnkit.numpy_engine.losses import log_softmax
from rnnkit.tasks.lm import StepFn, score_chunks

LN2 = math.log(2.0)


EVAL_CHUNK = 256


def score_ids(step: StepFn, ids: np.ndarray) -> dict:
    """Loss of predicting each character of ids (M,) from the ones before it, with the state carried.

    The ids are read as up to 16 side-by-side streams in EVAL_CHUNK pieces (`lm.score_chunks`).
    Targets that are <unk> (characters the model never saw) are not scored but counted.
    Returns loss (nats/char), bpc, accuracy (top-1 next character), chars (scored), unknown.
    """
    total, correct, count, unknown, state = 0.0, 0, 0, 0, None
    for x, y in score_chunks(ids, EVAL_CHUNK):
        logits, state = step(x, state)
        log_p = log_softmax(logits.astype(np.float64))  # (N, T, V)
        known = y != UNK_ID
        picked = np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]
        total -= float(picked[known].sum())
        correct += int((log_p.argmax(-1) == y)[known].sum())
        count += int(known.sum())
        unknown += int((~known).sum())
    if count == 0:
        raise InputError("the text holds no character the model knows, so there is nothing to score")
    loss = total / count
    return {"loss": loss, "bpc": loss / LN2, "accuracy": correct / count, "chars": count, "unknown": unknown}

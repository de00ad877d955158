"""Scoring a text with a character LM: nats and bits per character, with the state carried.

Losses are natural-log (nats) per character; bits per character = nats / ln 2.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.data.text import UNK_ID, stream_layout
from rnnkit.errors import InputError
from rnnkit.numpy_engine.losses import log_softmax
from rnnkit.tasks.charlm.engines import StepFn

LN2 = math.log(2.0)


EVAL_STREAMS = 16          # parallel streams when scoring a text


EVAL_MIN_STREAM = 1000     # ... each at least this long, so few characters start from a cold state


EVAL_CHUNK = 256


def score_ids(step: StepFn, ids: np.ndarray) -> dict:
    """Loss of predicting each character of ids (M,) from the ones before it, with the state carried.

    The ids are read as up to EVAL_STREAMS side-by-side streams in EVAL_CHUNK pieces.
    Targets that are <unk> (characters the model never saw) are not scored but counted.
    Returns loss (nats/char), bpc, accuracy (top-1 next character), chars (scored), unknown.
    """
    streams = max(1, min(EVAL_STREAMS, (len(ids) - 1) // EVAL_MIN_STREAM))
    inputs, targets = stream_layout(ids, streams)
    total, correct, count, state = 0.0, 0, 0, None
    for start in range(0, inputs.shape[1], EVAL_CHUNK):
        x, y = inputs[:, start:start + EVAL_CHUNK], targets[:, start:start + EVAL_CHUNK]
        logits, state = step(np.ascontiguousarray(x), state)
        log_p = log_softmax(logits.astype(np.float64))  # (N, T, V)
        known = y != UNK_ID
        picked = np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]
        total -= float(picked[known].sum())
        correct += int((log_p.argmax(-1) == y)[known].sum())
        count += int(known.sum())
    if count == 0:
        raise InputError("the text holds no character the model knows, so there is nothing to score")
    loss = total / count
    return {"loss": loss, "bpc": loss / LN2, "accuracy": correct / count, "chars": count,
            "unknown": int(np.sum(targets == UNK_ID))}

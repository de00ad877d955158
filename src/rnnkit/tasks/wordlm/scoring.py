"""Scoring a text with a word LM: nats per token and perplexity, with the state carried.

Every target counts, <unk> and <eos> too (the usual word-LM perplexity: a word
outside the vocabulary is predicted as <unk>); `unknown` says how many targets
were <unk>. perplexity = exp(nats per token).
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.data.vocab import UNK_ID
from rnnkit.errors import InputError
from rnnkit.tasks.lm import score_chunks
from rnnkit.tasks.wordlm.engines import ScoreFn

EVAL_CHUNK = 64  # steps per piece: a full softmax's 16 x 64 x 30,000 scores stay near 120 MB


def score_ids(score: ScoreFn, ids: np.ndarray) -> dict:
    """-log p of each token of ids (M,) given the ones before it, read as up to 16 streams (`lm.score_chunks`).

    Returns loss (nats/token), perplexity, tokens (scored), unknown (targets that are <unk>).
    """
    if len(ids) < 2:
        raise InputError("give a text of at least 2 words to score")
    total, count, unknown, state = 0.0, 0, 0, None
    for x, y in score_chunks(ids, EVAL_CHUNK):
        log_p, state = score(x, y, state)
        total -= float(np.sum(log_p, dtype=np.float64))
        count += y.size
        unknown += int(np.sum(y == UNK_ID))
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "tokens": count, "unknown": unknown}

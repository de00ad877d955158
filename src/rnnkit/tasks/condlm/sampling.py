"""Writing texts of a label: several at once, each from its label's initial state, each ending at <eos>.

The pieces are the word LM's (`wordlm.sampling`: the prime as ids after <eos>,
the options checked, <pad> and <unk> never drawn, ids back to text) and the
character LM's draw (`lm.pick_next`: temperature, top-k, one numpy Generator
per text, so either engine writes the same words for a seed). What is new here:
the state starts from the label, not from zeros (and holds the label's vector,
which a model conditioned at every step reads again at each step it takes:
`engines`); a text ends at <eos> (the end of a review) or after `length`
words; and the first word is never <eos>, so every text has at least one word.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from rnnkit.tasks.lm import PRIME_CHUNK, StepFn, pick_next
from rnnkit.tasks.wordlm.data import EOS_ID
from rnnkit.tasks.wordlm.sampling import NEVER_DRAWN

FINISHED = -1  # what a text that has ended yields for the steps the others still take


def sample_rows(step: StepFn, state, start: np.ndarray, length: int, temperature: float, top_k: int | None,
                rngs: list[np.random.Generator]) -> Iterator[np.ndarray]:
    """Read start ids (T0,) in every row from `state` (one row per generator in `rngs`), then yield the ids
    drawn at each step (N,), FINISHED for a row whose text has ended; stops when every text has."""
    count = len(rngs)
    ids = np.tile(np.asarray(start, dtype=np.int64), (count, 1))
    logits = None
    for begin in range(0, ids.shape[1], PRIME_CHUNK):  # bounded memory for long primes
        logits, state = step(ids[:, begin:begin + PRIME_CHUNK], state)
    last, alive = logits[:, -1], np.ones(count, bool)
    for produced in range(length):
        never = NEVER_DRAWN + ((EOS_ID,) if produced == 0 else ())  # at least one word
        drawn = np.array([pick_next(last[i], temperature, top_k, rngs[i], never) if alive[i] else FINISHED
                          for i in range(count)], dtype=np.int64)
        alive &= drawn != EOS_ID
        yield np.where(alive, drawn, FINISHED)
        if not alive.any() or produced + 1 == length:
            return
        logits, state = step(np.where(alive, drawn, EOS_ID)[:, None], state)
        last = logits[:, -1]

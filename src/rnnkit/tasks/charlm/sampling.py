"""Sampling text from a character LM, the same on either engine.

The engine (numpy or torch) only computes logits; `pick_next` turns them into a
character with one numpy Generator (temperature, optional top-k, inverse-CDF
draw), so a bundle generates the same text for the same seed on either engine.

Input rules (also in the README): the prime may only hold characters seen in
training (others are named in the error); temperature must be a finite
number > 0; length 1..`MAX_LENGTH`; top-k 1..(characters in the vocabulary),
or None for no cut; an empty prime starts from a newline (or, when the text
had none, its most frequent character).
"""

from __future__ import annotations

import contextlib
import math
import sys
from typing import Iterator

import numpy as np

from rnnkit.data.text import UNK_ID, CharVocab, describe_characters
from rnnkit.errors import InputError
from rnnkit.tasks.charlm.engines import StepFn

MAX_LENGTH = 100_000       # most characters one generate call may produce


MAX_PRIME_CHARS = 100_000  # longest prime (read in PRIME_CHUNK pieces, so memory stays bounded)


PRIME_CHUNK = 256


def check_generation(vocab: CharVocab, prime: str, length: int, temperature: float, top_k: int | None,
                     seed: int | None) -> None:
    """Raise InputError naming the fix for any unusable generation option."""
    if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= MAX_LENGTH:
        raise InputError(f"length must be a whole number of characters in 1..{MAX_LENGTH}; got {length!r}")
    if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
            or not math.isfinite(temperature) or temperature <= 0):
        raise InputError(f"temperature must be a finite number > 0 (about 0.5-1.0 is usual; lower is more "
                         f"conservative); got {temperature!r}")
    chars = len(vocab) - 1
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= chars):
        raise InputError(f"top-k must be a whole number in 1..{chars} (the model knows {chars} characters), "
                         f"or left out; got {top_k!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise InputError(f"seed must be a whole number >= 0; got {seed!r}")
    check_prime(vocab, prime)


def check_prime(vocab: CharVocab, prime: str) -> None:
    if not isinstance(prime, str):
        raise InputError(f"the prime must be text; got {type(prime).__name__}")
    if len(prime) > MAX_PRIME_CHARS:
        raise InputError(f"the prime has {len(prime)} characters; at most {MAX_PRIME_CHARS} are read")
    if any("\ud800" <= c <= "\udfff" for c in prime):
        raise InputError("the prime is not valid Unicode text (it holds a lone surrogate); re-encode it as UTF-8")
    unknown = vocab.unknown_characters(prime)
    if unknown:
        raise InputError(f"the prime has {len(unknown)} character(s) the model never saw in training: "
                         f"{describe_characters(unknown[:10])}{' ...' if len(unknown) > 10 else ''}; "
                         f"remove or replace them (the model knows {len(vocab) - 1} characters: "
                         f"{''.join(vocab.tokens[1:])!r})")


def start_ids(vocab: CharVocab, prime: str) -> np.ndarray:
    """ids (T,) the model reads before sampling: the prime, or for an empty prime a newline
    (the most frequent character when the training text had no newline)."""
    if prime:
        return vocab.encode(prime)
    newline = vocab.encode("\n")
    return newline if newline[0] != UNK_ID else np.array([int(np.argmax(vocab.counts))], dtype=np.int64)


def pick_next(logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> int:
    """One id from logits (V,): softmax(logits / temperature) over the top_k largest, <unk> excluded.

    Drawn by inverse CDF with a single `rng.random()`, in float64, so the same
    logits and Generator give the same id on any engine. A temperature so small
    that logits / temperature overflows (1e-310 is subnormal) tends to the argmax:
    the largest logit is then subtracted before dividing, so it stays at 0 and the
    others go to -inf (weight 0) instead of inf - inf = nan.
    """
    with np.errstate(over="ignore"):
        z = logits.astype(np.float64) / temperature
    z[UNK_ID] = -np.inf
    if not np.isfinite(z.max()):  # overflowed: +inf (or every z -inf); a nan anywhere makes the max nan too
        shifted = logits.astype(np.float64)
        shifted[UNK_ID] = -np.inf
        with np.errstate(over="ignore", invalid="ignore"):
            z = (shifted - shifted.max()) / temperature
        z[np.isnan(z)] = -np.inf
    if top_k is not None and top_k < len(z) - 1:
        kth = np.partition(z, len(z) - top_k)[len(z) - top_k]
        z[z < kth] = -np.inf
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    index = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return min(index, len(z) - 1)


def sample_ids(step: StepFn, ids: np.ndarray, length: int, temperature: float, top_k: int | None,
               rng: np.random.Generator) -> Iterator[int]:
    """Read ids (T,) then yield `length` sampled ids, one at a time, each fed back as the next input."""
    state, logits = None, None
    for start in range(0, len(ids), PRIME_CHUNK):  # bounded memory for long primes
        logits, state = step(ids[None, start:start + PRIME_CHUNK], state)
    last = logits[0, -1]
    for produced in range(length):
        choice = pick_next(last, temperature, top_k, rng)
        yield choice
        if produced + 1 < length:
            logits, state = step(np.array([[choice]], dtype=np.int64), state)
            last = logits[0, -1]


@contextlib.contextmanager
def one_thread():
    """One BLAS thread (threadpoolctl, when installed) and one torch thread (when torch is loaded).

    Generation runs one character at a time (batch 1): the products are too small to
    share, and on a busy 2-core machine a second BLAS thread made numpy generation
    about 40x slower (bench/charlm.py measures chars/s this way).
    """
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(1)
    try:
        with limits:
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(previous)

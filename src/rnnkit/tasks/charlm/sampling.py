"""Sampling text from a character LM, the same on either engine.

The engine (numpy or torch) only computes logits; `pick_next` turns them into a
character with one numpy Generator (temperature, optional top-k, inverse-CDF
draw), so a bundle generates the same text for the same seed on either engine.
The sampling itself is shared with the word LM (`rnnkit.tasks.lm`).

Input rules (also in the README): the prime may only hold characters seen in
training (others are named in the error); temperature must be a finite
number > 0; length 1..`MAX_LENGTH`; top-k 1..(characters in the vocabulary),
or None for no cut; an empty prime starts from a newline (or, when the text
had none, its most frequent character).
"""

from __future__ import annotations

import numpy as np

from rnnkit.data.text import UNK_ID, CharVocab, describe_characters
from rnnkit.errors import InputError
from rnnkit.tasks.lm import (MAX_LENGTH, MAX_PRIME_CHARS, PRIME_CHUNK, check_prime_text, check_sampling, one_thread, pick_next,
                             sample_ids)

__all__ = ["MAX_LENGTH", "MAX_PRIME_CHARS", "PRIME_CHUNK", "check_generation", "check_prime", "start_ids",
           "pick_next", "sample_ids", "one_thread"]


def check_generation(vocab: CharVocab, prime: str, length: int, temperature: float, top_k: int | None,
                     seed: int | None) -> None:
    """Raise InputError naming the fix for any unusable generation option."""
    check_sampling(length, temperature, top_k, seed, "characters", len(vocab) - 1)
    check_prime(vocab, prime)


def check_prime(vocab: CharVocab, prime: str) -> None:
    check_prime_text(prime)
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

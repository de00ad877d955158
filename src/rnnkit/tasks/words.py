"""A text as word ids for a many-to-one model, with the facts every answer reports, or one clear error."""

from __future__ import annotations

import numpy as np

from rnnkit.data.batching import truncate
from rnnkit.data.vocab import UNK_ID, Vocab, tokenize
from rnnkit.errors import InputError


def encode_words(text: str, vocab: Vocab, maxlen: int, truncating: str, noun: str = "text",
                 hint: str = "") -> tuple[np.ndarray, dict]:
    """Ids of `text` cut to `maxlen` from the `truncating` side, and facts: tokens, unknown, truncated.

    InputError (naming the `noun`, e.g. "review", and ending with `hint`) for a text that is not a
    string, has no words, or has only words the vocabulary lacks.
    """
    if not isinstance(text, str):
        raise InputError(f"a {noun} must be a string; got {type(text).__name__}")
    tokens = tokenize(text)
    if not tokens:
        raise InputError(f"the {noun} has no words (it is empty, or only spaces, punctuation or symbols){hint}")
    ids = np.asarray(vocab.encode(tokens), dtype=np.int64)
    unknown = int(np.sum(ids == UNK_ID))
    if unknown == len(ids):
        raise InputError(f"none of the {len(ids)} words of the {noun} are in the model's vocabulary "
                         f"({len(vocab)} words), so it cannot be {'judged' if noun == 'review' else 'classified'}"
                         f"{'; write it in English words' if noun == 'review' else ''}")
    cut = truncate(ids, maxlen, truncating)
    return np.asarray(cut), {"tokens": len(ids), "unknown": unknown, "truncated": len(ids) > len(cut)}

"""Writing text with a word LM: the prime as word ids, the options checked, the sampled words as text.

Sampling itself is the character LM's (`rnnkit.tasks.lm.sample_ids`: temperature,
top-k, one numpy Generator, so either engine writes the same words for a seed),
with <pad> and <unk> never drawn. The model reads <eos> first (a document's
start), then the prime's words; words the vocabulary lacks are read as <unk>.
The words are written lower case, as the tokenizer keeps them, joined by
spaces; "!" and "?" follow the word before them, and <eos> (the end of a
document) is a blank line.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from rnnkit.data.vocab import PAD_ID, UNK_ID, Vocab, tokenize
from rnnkit.tasks.lm import check_prime_text, check_sampling
from rnnkit.tasks.wordlm.data import EOS_ID

NEVER_DRAWN = (PAD_ID, UNK_ID)
ATTACHED = frozenset({"!", "?"})  # written right after the word before them


def check_generation(vocab: Vocab, prime: str, length: int, temperature: float, top_k: int | None,
                     seed: int | None) -> None:
    """InputError naming the fix for any unusable generation option."""
    check_sampling(length, temperature, top_k, seed, "words", len(vocab) - len(NEVER_DRAWN))
    check_prime_text(prime)


def start_ids(vocab: Vocab, prime: str) -> np.ndarray:
    """ids (T,) the model reads before sampling: <eos> (a document starts), then the prime's words."""
    return np.asarray([EOS_ID, *vocab.encode(tokenize(prime))], dtype=np.int64)


def unknown_words(vocab: Vocab, prime: str) -> list[str]:
    """The distinct words of `prime` the vocabulary lacks (read as <unk>), in order of first appearance."""
    tokens = tokenize(prime)
    return list(dict.fromkeys(t for t, i in zip(tokens, vocab.encode(tokens)) if i == UNK_ID))


def render(vocab: Vocab, ids: Iterable[int], after_prime: bool) -> Iterator[str]:
    """Each id as the text that follows what came before: " word", "!" or a blank line for <eos>.

    `after_prime`: something was written before (no leading space otherwise).
    """
    line_start = not after_prime
    for i in ids:
        if i == EOS_ID:
            yield "\n\n"
            line_start = True
            continue
        word = vocab.tokens[i]
        yield word if line_start or word in ATTACHED else " " + word
        line_start = False


def detokenize(vocab: Vocab, ids: Iterable[int]) -> str:
    """Ids as text (see `render`)."""
    return "".join(render(vocab, ids, after_prime=False))

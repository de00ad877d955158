"""Word tokenizer and vocabulary.

The tokenizer lower-cases, turns HTML line breaks (``<br />``) into spaces,
keeps words (any script, with inner apostrophes: "don't") and keeps ``!`` and
``?`` as tokens of their own (they carry sentiment); other punctuation, emoji
and control characters are dropped. It never raises on any string.

A `Vocab` maps tokens to ids. Id 0 is padding and id 1 stands for every
unknown word; the rest are the most frequent training words, ties broken
alphabetically so the same corpus always gives the same ids. A vocabulary may
hold special tokens after those two (`Vocab.build(..., specials=[EOS])`: the
word language model's end of a document); their spelling ("<eos>") is one the
tokenizer never produces, so a text never reads as one.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from rnnkit.errors import BundleError, ConfigError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
EOS = "<eos>"  # the end of a document in a word language model's token stream
TOKENIZER_NAME = "rnnkit-word-v1"

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]")


def tokenize(text: str) -> list[str]:
    """Split a text into lower-case tokens: ``"Great!<br />I'd go"`` -> ``["great", "!", "i'd", "go"]``."""
    return _TOKEN.findall(_BREAK.sub(" ", text).lower())


@dataclass(frozen=True)
class Vocab:
    """Token <-> id table with reserved padding (0) and unknown (1) ids.

    Attributes:
        tokens: id -> token; tokens[0] == "<pad>", tokens[1] == "<unk>".
    """

    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.tokens) < 2 or self.tokens[PAD_ID] != PAD or self.tokens[UNK_ID] != UNK:
            raise BundleError(f"a vocabulary must start with {PAD!r}, {UNK!r}")
        index = {token: i for i, token in enumerate(self.tokens)}
        if len(index) != len(self.tokens):
            raise BundleError("the vocabulary lists a token twice; it is damaged")
        del index[PAD]  # text that spells "<pad>" is an unknown word, never padding
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, counts: Counter | dict[str, int], max_size: int | None = None, min_freq: int = 1,
              specials: Sequence[str] = ()) -> "Vocab":
        """The `max_size` (including the 2 reserved ids and the `specials`, ids 2..) most frequent tokens
        seen >= min_freq times.

        ``max_size=None`` keeps every word.
        """
        reserved = 2 + len(specials)
        if max_size is not None and max_size < reserved + 1:
            raise ConfigError(f"vocabulary size must be at least {reserved + 1} ({reserved} reserved ids + 1 word); "
                              f"got {max_size}")
        ranked = sorted((t for t, c in counts.items() if c >= min_freq and t not in (PAD, UNK, *specials)),
                        key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max_size - reserved]
        return cls((PAD, UNK, *specials, *ranked))

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of `tokens`; unknown tokens (and the literal "<pad>") become UNK_ID."""
        index = self._index
        return [index.get(token, UNK_ID) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def to_json(self) -> dict[str, Any]:
        return {"type": "word", "tokenizer": TOKENIZER_NAME, "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Vocab":
        if data.get("type") != "word" or data.get("tokenizer") != TOKENIZER_NAME:
            raise BundleError(f"vocabulary type {data.get('type')!r} / tokenizer {data.get('tokenizer')!r} "
                              f"is not a word vocabulary of {TOKENIZER_NAME}; was it made by a newer rnnkit?")
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise BundleError("the vocabulary's tokens must be a list of strings")
        return cls(tuple(tokens))


def count_tokens(documents: Iterable[Sequence[str]]) -> Counter:
    counts: Counter = Counter()
    for tokens in documents:
        counts.update(tokens)
    return counts


def remap_to_size(ids: np.ndarray, size: int) -> np.ndarray:
    """Ids from a frequency-ranked vocabulary cut to its first `size` entries: larger ids -> UNK_ID."""
    return np.where(ids < size, ids, UNK_ID).astype(ids.dtype, copy=False)

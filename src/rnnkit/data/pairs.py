"""Sentence pairs for sequence-to-sequence models: reading, tokenizing, vocabularies, filters, splits.

A pair file is UTF-8 text with one pair per line, ``source<TAB>target``; more
columns (Tatoeba's attribution) are ignored and blank lines skipped.

Each side has its own `PairVocab`: a level ("word" or "char"), lower-casing,
and a `Vocab` whose first ids are reserved::

    0 <pad>   1 <unk>   2 <s> (start of a target)   3 </s> (end of a target)

Word level splits into words (with inner apostrophes: "j'ai", "don't") and
single punctuation marks; char level keeps every character (runs of white
space become one space). Unknown tokens map to <unk>.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rnnkit.data.vocab import PAD, PAD_ID, UNK, UNK_ID, Vocab
from rnnkit.errors import BundleError, ConfigError, DataError
from rnnkit.fileio import open_regular_file

BOS, EOS = "<s>", "</s>"
BOS_ID, EOS_ID = 2, 3
SPECIALS = (PAD, UNK, BOS, EOS)
LEVELS = ("word", "char")
TOKENIZER = "rnnkit-seq2seq-v1"
MAX_PAIR_FILE_BYTES = 1 << 30  # 1 GiB: Tatoeba's whole English-French file is about 30 MB

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]|_")
_SPACE_BEFORE = re.compile(r" ([.,;:)])")  # "il fait froid ." -> "il fait froid."


def tokenize(text: str, level: str, lowercase: bool) -> list[str]:
    """Tokens of `text`: ``"I'm cold."`` -> ``["i'm", "cold", "."]`` (word) or characters (char)."""
    text = unicodedata.normalize("NFC", text)
    text = text.lower() if lowercase else text
    if level == "word":
        return _WORD.findall(text)
    return list(" ".join(text.split()))


def detokenize(tokens: Sequence[str], level: str) -> str:
    """Inverse of `tokenize` up to spacing: words joined by spaces (none before . , ; : )), chars joined."""
    if level == "char":
        return "".join(tokens)
    return _SPACE_BEFORE.sub(r"\1", " ".join(tokens))


@dataclass(frozen=True)
class PairVocab:
    """One side of a pair data set: how text becomes ids and back.

    Attributes:
        level: "word" or "char".
        lowercase: lower-case text before tokenizing.
        vocab: tokens <-> ids, starting with <pad>, <unk>, <s>, </s>.
    """

    level: str
    lowercase: bool
    vocab: Vocab

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ConfigError(f"token level must be word or char; got {self.level!r}")
        if tuple(self.vocab.tokens[:4]) != SPECIALS:
            raise BundleError(f"a seq2seq vocabulary must start with {', '.join(SPECIALS)}")

    def __len__(self) -> int:
        return len(self.vocab)

    @classmethod
    def build(cls, texts: Iterable[str], level: str, lowercase: bool = True,
              max_size: int | None = None, min_freq: int = 1) -> "PairVocab":
        """The `max_size` (incl. 4 reserved ids) most frequent tokens of `texts` seen >= min_freq times."""
        if level not in LEVELS:
            raise ConfigError(f"token level must be word or char; got {level!r}")
        if max_size is not None and max_size < 5:
            raise ConfigError(f"a vocabulary needs room for 4 reserved ids and a token; got size {max_size}")
        counts = Counter(t for text in texts for t in tokenize(text, level, lowercase))
        ranked = sorted((t for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
                        key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max_size - len(SPECIALS)]
        return cls(level, lowercase, Vocab((*SPECIALS, *ranked)))

    def tokens(self, text: str) -> list[str]:
        return tokenize(text, self.level, self.lowercase)

    def encode(self, text: str) -> list[int]:
        """Ids of `text` without <s> or </s>; unknown tokens become UNK_ID."""
        return self.vocab.encode(self.tokens(text))

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ids, stopping at </s> and skipping <pad> and <s>."""
        out = []
        for i in ids:
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(self.vocab.tokens[i])
        return detokenize(out, self.level)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.level, "tokenizer": TOKENIZER, "lowercase": self.lowercase,
                "tokens": list(self.vocab.tokens)}

    @classmethod
    def from_json(cls, data: Any) -> "PairVocab":
        if not isinstance(data, dict) or data.get("tokenizer") != TOKENIZER or data.get("type") not in LEVELS:
            raise BundleError(f"this is not a {TOKENIZER} word/char vocabulary; was it made by a newer rnnkit?")
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise BundleError("the vocabulary's tokens must be a list of strings")
        return cls(data["type"], bool(data.get("lowercase", True)), Vocab(tuple(tokens)))


def read_pairs(path: str | Path, limit: int | None = None,
               max_bytes: int = MAX_PAIR_FILE_BYTES) -> list[tuple[str, str]]:
    """(source, target) strings of a TSV pair file; columns after the second are ignored.

    Raises DataError naming the file and line for a missing file, non-UTF-8
    bytes, or a line without a tab. Only a regular file of at most `max_bytes`
    is read (a pipe or a device such as /dev/zero is refused before a byte is read).
    """
    path = Path(path)
    if not path.exists() or path.is_dir():
        raise DataError(f"no pair file at {path}; give a UTF-8 TSV file with one 'source<TAB>target' pair "
                        "per line (e.g. --pairs ../shared/data/eng-fra-tatoeba-5k.tsv), or use --task dates")
    pairs, read = [], 0
    with open_regular_file(path, max_bytes, hint="use fewer pairs (e.g. head -n 100000 FILE > sample.tsv)") as handle:
        for number, raw in enumerate(handle, start=1):
            read += len(raw)
            if read > max_bytes:
                raise DataError(f"{path} grew past the {max_bytes:,}-byte limit while it was read")
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise DataError(f"{path}, line {number}: not UTF-8 text; re-encode the file (iconv -t UTF-8)") from None
            if not line.strip():
                continue
            columns = line.split("\t")
            if len(columns) < 2:
                raise DataError(f"{path}, line {number}: no tab; each line must be 'source<TAB>target'")
            pairs.append((columns[0].strip(), columns[1].strip()))
            if limit is not None and len(pairs) >= limit:
                break
    if not pairs:
        raise DataError(f"{path} holds no pairs; each line must be 'source<TAB>target'")
    return pairs


@dataclass(frozen=True)
class EncodedPairs:
    """Pairs as id arrays: sources[i] (S_i,) and targets[i] (T_i,), without <s> / </s>."""

    sources: list[np.ndarray]
    targets: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, index: Iterable[int]) -> "EncodedPairs":
        index = list(index)
        return EncodedPairs([self.sources[i] for i in index], [self.targets[i] for i in index])


def encode_pairs(pairs: Sequence[tuple[str, str]], source: PairVocab, target: PairVocab,
                 max_source_len: int, max_target_len: int) -> tuple[EncodedPairs, np.ndarray]:
    """Encode pairs, dropping those with an empty side or a side over its length limit (in tokens).

    Returns the kept pairs and their indices into `pairs`.
    """
    sources, targets, kept = [], [], []
    for i, (src, tgt) in enumerate(pairs):
        s, t = source.encode(src), target.encode(tgt)
        if 0 < len(s) <= max_source_len and 0 < len(t) <= max_target_len:
            sources.append(np.asarray(s, dtype=np.int64))
            targets.append(np.asarray(t, dtype=np.int64))
            kept.append(i)
    return EncodedPairs(sources, targets), np.asarray(kept, dtype=np.int64)


def split_by_source(sources: Sequence[str], fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out): about `fraction` of the distinct source texts are held out.

    Every pair of a held-out source goes to the held-out side, so the held-out
    sentences are never seen in training (Tatoeba lists several translations of one sentence).
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"the held-out fraction must be in (0, 1); got {fraction!r}")
    distinct = sorted(set(sources))
    if len(distinct) < 2:
        raise DataError("need at least 2 distinct source sentences to hold some out")
    count = min(len(distinct) - 1, max(1, int(round(len(distinct) * fraction))))
    held = set(rng.permutation(len(distinct))[:count].tolist())
    held_texts = {distinct[i] for i in held}
    mask = np.fromiter((s in held_texts for s in sources), dtype=bool, count=len(sources))
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def group_references(sources: Sequence[str], targets: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Distinct sources in first-seen order, each with every target given for it (BLEU references)."""
    refs: dict[str, list[str]] = {}
    for s, t in zip(sources, targets):
        refs.setdefault(s, []).append(t)
    return list(refs), list(refs.values())


__all__ = ["BOS", "EOS", "BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "PairVocab", "EncodedPairs", "tokenize",
           "detokenize", "read_pairs", "encode_pairs", "split_by_source", "group_references"]

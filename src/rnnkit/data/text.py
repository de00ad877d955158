"""Plain text for character-level language models: reading, a character vocabulary, BPTT batches.

Key: N parallel streams (the batch), T steps per chunk (truncated BPTT length),
V vocabulary size, M characters of a split.

Reading (`read_text`): a UTF-8 file (a leading byte-order mark is dropped;
line endings are kept as they are). A missing path, a directory, an empty
file, a file with NUL bytes (binary) or bytes that are not UTF-8 raise
`DataError` saying how to fix it.

Characters are Unicode code points, so any script, emoji or symbol is one
token of its own (a multi-code-point emoji is several).

The vocabulary (`CharVocab`) holds every distinct character of the training
text, sorted by code point, after one reserved id::

    0  <unk>   every character the training text never had

Policy for unseen characters: `encode` maps them to id 0, whose embedding
stays zero (it is the model's padding row) and which is never a training
target. Generation refuses a prime containing them (`unknown_characters`
names them); evaluation reads them as input but does not score them as
targets (it counts them instead); sampling never produces id 0.

Batches (`chunk_batches`): the classic layout for truncated BPTT. A split of
M ids is cut into N equal streams laid side by side, and batch i holds
columns [i*T, (i+1)*T) of every stream, so row n of batch i+1 continues row n
of batch i: the hidden state at the end of one batch is the right start for
the next. Targets are the inputs shifted by one character.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from rnnkit.errors import BundleError, DataError
from rnnkit.fileio import read_regular_bytes

UNK = "<unk>"
UNK_ID = 0
VOCAB_KIND = "char"
MAX_TEXT_BYTES = 1 << 30  # 1 GiB: a character LM file larger than this is almost surely a mistake


# --------------------------------------------------------------------------- reading


def read_text(path: str | Path, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of `path`; DataError naming the fix for anything that is not usable text.

    Only a regular file of at most `max_bytes` is read: a pipe, a device (``/dev/zero``) or a
    symlink to one is refused before a byte is read (`rnnkit.fileio.read_regular_bytes`).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"text file {path} does not exist; pass the path of a UTF-8 text file with --text")
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass one UTF-8 text file with --text (concatenate several "
                        "with: cat DIR/*.txt > all.txt)")
    raw = read_regular_bytes(path, max_bytes, hint="use a smaller sample of the text")
    return decode_text(raw, str(path))


def decode_text(raw: bytes, name: str = "the text") -> str:
    """Strict UTF-8 decoding with errors that say where the problem is and how to fix it."""
    if not raw.strip():
        raise DataError(f"{name} is empty (or only white space); a language model needs text to learn from")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{name} is UTF-16 text; convert it to UTF-8 first, "
                        "e.g. iconv -f utf-16 -t utf-8 FILE > FILE.utf8")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{name} holds a NUL byte at offset {nul}: it looks like a binary file, not text; "
                        "pass a plain-text file (e.g. export the document as .txt)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
                        "convert it first, e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8") from None
    return text.removeprefix("\ufeff")


def split_text(text: str, validation_fraction: float = 0.1) -> tuple[str, str]:
    """(train, validation): the first (1 - fraction) of the characters and the rest, in order."""
    if not 0.0 < validation_fraction < 1.0:
        raise DataError(f"validation fraction must be in (0, 1); got {validation_fraction!r}")
    cut = int(round(len(text) * (1.0 - validation_fraction)))
    return text[:cut], text[cut:]


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class CharVocab:
    """Character <-> id table; id 0 is `<unk>` (see the module docstring for the policy).

    Attributes:
        tokens: id -> character; tokens[0] == "<unk>", the rest single code points in code-point order.
        counts: id -> occurrences in the training text (0 for <unk>); used for an empty prime.
    """

    tokens: tuple[str, ...]
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.tokens) < 2 or self.tokens[UNK_ID] != UNK:
            raise BundleError(f"a character vocabulary starts with {UNK!r} and has at least one character")
        if len(self.counts) != len(self.tokens):
            raise BundleError("the character vocabulary has a count for each token; it is damaged")
        chars = self.tokens[1:]
        if not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise BundleError("a character vocabulary holds single characters after <unk>; it is damaged")
        if len(set(chars)) != len(chars):
            raise BundleError("the character vocabulary lists a character twice; it is damaged")
        index = {c: i for i, c in enumerate(self.tokens) if i != UNK_ID}
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, text: str) -> "CharVocab":
        """Every distinct character of `text`, in code-point order, after <unk>."""
        counts = Counter(text)
        chars = sorted(counts)
        return cls((UNK, *chars), (0, *(counts[c] for c in chars)))

    def encode(self, text: str) -> np.ndarray:
        """ids (M,) int64; characters the vocabulary lacks become UNK_ID."""
        get = self._index.get
        return np.fromiter((get(c, UNK_ID) for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; UNK_ID (never sampled) becomes U+FFFD."""
        return "".join("\ufffd" if i == UNK_ID else self.tokens[i] for i in ids)

    def unknown_characters(self, text: str) -> list[str]:
        """The distinct characters of `text` the vocabulary lacks, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._index))

    def to_json(self) -> dict[str, Any]:
        return {"kind": VOCAB_KIND, "unknown_id": UNK_ID, "tokens": list(self.tokens), "counts": list(self.counts)}

    @classmethod
    def from_json(cls, data: Any) -> "CharVocab":
        if not isinstance(data, dict) or data.get("kind") != VOCAB_KIND:
            raise BundleError("vocab.json is not a character vocabulary (kind 'char'); is this a charlm bundle?")
        tokens, counts = data.get("tokens"), data.get("counts")
        if not isinstance(tokens, list) or not isinstance(counts, list):
            raise BundleError("the character vocabulary needs 'tokens' and 'counts' lists; it is damaged")
        if not all(isinstance(n, int) and n >= 0 for n in counts):
            raise BundleError("the character vocabulary's counts must be non-negative integers; it is damaged")
        return cls(tuple(tokens), tuple(counts))


def describe_characters(chars: Iterable[str]) -> str:
    """'é' (U+00E9 LATIN SMALL LETTER E WITH ACUTE), ... for error messages; control characters escaped."""
    shown = []
    for c in chars:
        name = unicodedata.name(c, "unnamed")
        visible = repr(c) if c.isprintable() else ascii(c)
        shown.append(f"{visible} (U+{ord(c):04X} {name})")
    return ", ".join(shown)


# --------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class Chunk:
    """One truncated-BPTT batch.

    Attributes:
        inputs: (N, T) int64 ids.
        targets: (N, T) int64 ids, the next character of each input.
        index: position of the chunk in its epoch (0, 1, ...).
        first: True for the epoch's first chunk: start from a zero state.
    """

    inputs: np.ndarray
    targets: np.ndarray
    index: int
    first: bool


def stream_layout(ids: np.ndarray, streams: int) -> tuple[np.ndarray, np.ndarray]:
    """ids (M,) -> inputs, targets (N, L): N side-by-side streams of L = (M - 1) // N ids each.

    Stream n covers ids[n*L : n*L + L]; its targets are the same positions plus one.
    The last (M - 1) % N ids are dropped.
    """
    length = (len(ids) - 1) // streams
    if length < 1:
        raise DataError(f"{len(ids)} characters cannot fill {streams} streams; use a smaller batch size")
    used = streams * length
    return ids[:used].reshape(streams, length), ids[1:used + 1].reshape(streams, length)


def chunk_batches(ids: np.ndarray, batch_size: int, seq_len: int, offset: int = 0, copy: bool = True) -> list[Chunk]:
    """Batches of `batch_size` streams x `seq_len` steps; chunk i+1 continues chunk i in every row.

    `offset` skips that many leading ids first (a different offset each epoch
    moves the chunk boundaries). The last, shorter chunk is kept when it has
    at least one step, so no character is left out beyond the stream remainder.
    `copy=False` gives chunks that are views of `ids` in its own dtype (no copy of
    a long stream: the step converts each chunk); else contiguous int64 copies.
    """
    if not copy:
        inputs, targets = stream_layout(np.asarray(ids)[offset:], batch_size)
        return [Chunk(inputs[:, s:s + seq_len], targets[:, s:s + seq_len], number, number == 0)
                for number, s in enumerate(range(0, inputs.shape[1], seq_len))]
    inputs, targets = stream_layout(np.asarray(ids, dtype=np.int64)[offset:], batch_size)
    length = inputs.shape[1]
    if length < seq_len:
        raise DataError(f"the training text gives {batch_size} streams of only {length} characters, "
                        f"shorter than --seq-len {seq_len}; use a longer text, a smaller --batch-size "
                        "or a smaller --seq-len")
    return [Chunk(np.ascontiguousarray(inputs[:, s:s + seq_len]), np.ascontiguousarray(targets[:, s:s + seq_len]),
                  number, number == 0)
            for number, s in enumerate(range(0, length, seq_len))]

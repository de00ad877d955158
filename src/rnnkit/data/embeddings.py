"""Pretrained word vectors in the text format (word2vec, GloVe, fastText), read for one vocabulary.

The format: one word per line, then its D numbers, separated by spaces::

    the 0.418 0.24968 -0.41242 ...          GloVe (.txt): no header
    2000000 300                             word2vec / fastText (.vec): a first line "COUNT DIM",
    , -0.0282 -0.0557 ...                   then the same lines

plain or gzip-compressed (.gz; recognised by its first bytes), UTF-8 (a BOM is
skipped), LF or CRLF line ends, trailing spaces allowed (fastText writes one).
A few words of GloVe 840B and fastText contain spaces (". . .",
"at name@domain.com"): the last D fields are the vector, the rest is the word.

Such files are gigabytes (GloVe 840B: 5.6 GB), so the file is streamed once and
only the vectors of the vocabulary's words are parsed and kept: memory is
(V, D), not the file's. Every line's field count is checked; the numbers of a
line are parsed only when its word is wanted (and on the first line, which
must be a vector). Reading stops early once every vocabulary word has its own
vector.

Matching: a vocabulary word takes the vector of the same word in the file;
failing that, of the first file word that lower-cases to it ("Paris" for
"paris": rnnkit's tokenizer lower-cases). <pad> and <unk> are never matched
(the padding row stays zero; the unknown word has no pretrained meaning).

Key: V vocabulary size (incl. <pad>, <unk>), D vector size.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Mapping, Sequence

import numpy as np

from rnnkit.config import MAX_WIDTH
from rnnkit.data.vocab import PAD, UNK
from rnnkit.errors import DataError
from rnnkit.fileio import open_regular_file

MAX_FILE_BYTES = 32 << 30   # 32 GiB, the file and (gzip) its decompressed text: GloVe 840B is 5.6 GB
MAX_LINE_BYTES = 2 << 20    # one word and 65,536 numbers; a 300-d line is about 3.5 kB
PROGRESS_LINES = 8192
FORMAT = "each line must be a word then its numbers, separated by spaces (word2vec/GloVe/fastText text format)"


@dataclass(frozen=True)
class WordVectors:
    """A vector file's vectors for one vocabulary.

    Attributes:
        vectors: (V, D) float32; row i is vocabulary word i's vector where `found[i]`, else zeros (a
            model keeps its own initialisation for those rows).
        found: (V,) bool, the words that have a vector.
        dim: D.
        source: the file's name (no directory).
        lowercased: words matched only through a differently-cased file word.
        words: the vocabulary's words (<pad> and <unk> not counted).
        coverage: words found / words.
        token_coverage: share of the counted tokens whose word was found (None without counts).
        digest: SHA-256 of the ids and vectors found: the identity of what a model starts from.
    """

    vectors: np.ndarray
    found: np.ndarray
    dim: int
    source: str
    lowercased: int
    words: int
    coverage: float
    token_coverage: float | None
    digest: str

    @property
    def words_found(self) -> int:
        return int(self.found.sum())

    def summary(self) -> dict:
        """What a bundle records about them (JSON)."""
        return {"file": self.source, "dim": self.dim, "words_found": self.words_found,
                "coverage": round(self.coverage, 6),
                "token_coverage": None if self.token_coverage is None else round(self.token_coverage, 6),
                "lowercased": self.lowercased, "sha256": self.digest}

    def describe(self) -> str:
        """One line: "glove.txt (100-d): 4,321 of 5,000 words (86.4%), 97.2% of training tokens"."""
        tokens = "" if self.token_coverage is None else f", {self.token_coverage:.1%} of training tokens"
        return (f"{self.source} ({self.dim}-d): {self.words_found:,} of {self.words:,} words ({self.coverage:.1%})"
                f"{tokens}")


def read_word_vectors(path: str | os.PathLike, tokens: Sequence[str], dim: int | None = None,
                      counts: Mapping[str, int] | None = None, progress: bool = False) -> WordVectors:
    """The vectors in the text file `path` of the vocabulary `tokens` (id order; see the module docstring).

    `dim` is the size the model asks for (--embedding-dim; None: the file's). `counts` (token -> count
    in the training texts) gives the token coverage. Anything wrong with the file is a DataError naming
    the file, the line and the fix.
    """
    path = Path(path)
    index = {token: i for i, token in enumerate(tokens) if token not in (PAD, UNK)}
    missing = len(index)  # vocabulary words still without a vector of their own spelling
    with _VectorLines(path, progress) as lines:
        D = lines.dimension
        _check_asked(path, D, dim, lines.dimension_from)
        vectors = np.zeros((len(tokens), D), dtype=np.float32)
        exact, lowered = np.zeros(len(tokens), dtype=bool), np.zeros(len(tokens), dtype=bool)
        vectors_read = 0
        for number, line in lines:
            vectors_read += 1
            word, cut = _split_word(path, number, line, D, lines.dimension_from)
            i = index.get(word) if word else None
            same = i is not None and not exact[i]  # the word itself: it wins over a lower-cased match
            j = index.get(word.lower()) if word and i is None else None
            other = j is not None and not exact[j] and not lowered[j]  # the first other-cased spelling
            if same or other or number == lines.first_vector:  # the first line is always checked
                values = _numbers(path, number, line, cut, D, word)
            if same:
                vectors[i], exact[i], lowered[i] = values, True, False
                missing -= 1
                if not missing:
                    break  # every word has its own vector: the rest of the file cannot change anything
            elif other:
                vectors[j], lowered[j] = values, True
        if not vectors_read:
            raise DataError(f"{path} has a header but no vectors after it; {FORMAT}")
    found = exact | lowered
    return WordVectors(vectors, found, D, path.name, int(lowered.sum()), len(index), _coverage(found, len(index)),
                       _token_coverage(tokens, found, counts), _digest(vectors, found))


def check_dimension(path: str | os.PathLike, dim: int | None) -> int:
    """D of the vector file `path`, from its header or first line (cheap: a check before any data is read);
    a DataError naming the fix if `dim` (--embedding-dim) is given and differs."""
    with _VectorLines(Path(path), False) as lines:
        _check_asked(Path(path), lines.dimension, dim, lines.dimension_from)
        return lines.dimension


# --------------------------------------------------------------------------- the file, line by line


class _VectorLines:
    """The lines of a vector file as stripped bytes, with (number, line) from the first vector line on.

    Opening reads the header (or the first vector line) and sets `dimension` (D), `dimension_from`
    (where D was read, for messages) and `first_vector` (its line number).
    """

    def __init__(self, path: Path, progress: bool) -> None:
        self.path, self.progress = path, progress
        self.raw: IO[bytes] | None = None

    def __enter__(self) -> "_VectorLines":
        path = self.path
        if path.name.lower().endswith((".bin", ".bin.gz")):
            raise DataError(f"{path} looks like a binary word2vec file; rnnkit reads the text format: convert it, "
                            "e.g. with gensim: KeyedVectors.load_word2vec_format(FILE, binary=True)"
                            ".save_word2vec_format('vectors.txt')")
        self.raw = open_regular_file(path, MAX_FILE_BYTES, hint="use a smaller vector file")
        try:
            head = self.raw.peek(8)[:8]
            _refuse_other_formats(path, head)
            self.stream: IO[bytes] = gzip.GzipFile(fileobj=self.raw, mode="rb") if head[:2] == b"\x1f\x8b" else self.raw
            self._lines = self._read()
            self._first()
        except BaseException:
            self.raw.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._lines.close()  # a reading stopped early: close the progress bar now
        self.raw.close()

    def _first(self) -> None:
        """The header (word2vec: "COUNT DIM") or the first vector line (GloVe) gives D."""
        for number, line in self._lines:
            fields = line.split(b" ")
            if len(fields) == 2 and all(f.isdigit() for f in fields):
                count, dim = int(fields[0]), int(fields[1])
                if count < 1 or dim < 1:
                    raise DataError(f"{self.path}, line {number}: the header says {count} vectors of size {dim}; "
                                    "it should be 'COUNT DIM' with both above 0 (or leave the header out)")
                self.dimension, self.dimension_from = dim, f"the header (line {number}) says {dim}"
                self.first_vector, self._pending = number + 1, None
            else:
                self.dimension = line.count(b" ")  # GloVe: the first word has no spaces
                self.dimension_from = f"line {number} has {self.dimension}"
                self.first_vector, self._pending = number, (number, line)
                if not self.dimension:
                    tabs = "; it is separated by tabs: use spaces" if b"\t" in line else ""
                    raise DataError(f"{self.path}, line {number}: no numbers after the word{tabs}; {FORMAT}")
            if self.dimension > MAX_WIDTH:
                raise DataError(f"{self.path}: vectors of size {self.dimension:,}, more than the {MAX_WIDTH:,} "
                                "rnnkit's models take; is this a word-vector text file?")
            return
        raise DataError(f"{self.path} holds no vectors (it is empty); {FORMAT}")

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        if self._pending is not None:
            yield self._pending
        yield from self._lines

    def _read(self) -> Iterator[tuple[int, bytes]]:
        """(line number, line without its line end and trailing spaces), blank lines skipped; bounded."""
        from tqdm.auto import tqdm

        path, stream = self.path, self.stream
        total = os.fstat(self.raw.fileno()).st_size
        shown_now = self.progress and sys.stderr.isatty()
        bar = tqdm(total=total, desc=f"reading {path.name}", unit="B", unit_scale=True, disable=not shown_now,
                   file=sys.stderr, leave=False, delay=1.0)  # only for a file that takes a while
        read, shown = 0, 0
        try:
            for number, raw in enumerate(iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b""), start=1):
                read += len(raw)
                if len(raw) > MAX_LINE_BYTES:
                    raise DataError(f"{path}, line {number} is over {MAX_LINE_BYTES:,} bytes; {FORMAT}")
                if read > MAX_FILE_BYTES:
                    raise DataError(f"{path} holds more than {MAX_FILE_BYTES:,} bytes of text; use a smaller "
                                    "vector file")
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                if number % PROGRESS_LINES == 0 and shown_now:
                    bar.update(self.raw.tell() - shown)
                    shown = self.raw.tell()
                line = raw.rstrip()
                if line:
                    yield number, line
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(f"{path}: the gzip stream is damaged or cut short ({exc}); download the file "
                            "again") from None
        finally:
            bar.close()


def _refuse_other_formats(path: Path, head: bytes) -> None:
    if head.startswith(b"PK\x03\x04"):
        raise DataError(f"{path} is a zip archive (GloVe comes as glove.6B.zip); unzip it and give one of its "
                        ".txt files, e.g. glove.6B.100d.txt")
    if head.startswith((b"BZh", b"\xfd7zXZ")):
        raise DataError(f"{path} is bzip2/xz-compressed; decompress it (bunzip2, unxz) or recompress it with gzip")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path} is UTF-16 text; convert it to UTF-8: iconv -f utf-16 -t utf-8 FILE > FILE.utf8")


def _split_word(path: Path, number: int, line: bytes, D: int, dimension_from: str) -> tuple[str, int]:
    """The word of a vector line and the offset where its numbers start; a DataError on a wrong field count."""
    spaces = line.count(b" ")
    if spaces == D:
        cut = line.index(b" ")
    elif spaces > D:  # a word with spaces, or a vector that is too long
        cut = len(line.rsplit(b" ", D)[0])
        extra = line[:cut].split(b" ")[1:]
        if all(_is_number(field) for field in extra):
            raise DataError(f"{path}, line {number}: {spaces} numbers after the word, but {dimension_from}; "
                            f"every vector must have the same size ({FORMAT})")
    else:
        raise DataError(f"{path}, line {number}: {spaces} numbers after the word, but {dimension_from}; every "
                        f"vector must have the same size ({FORMAT})")
    try:
        return line[:cut].decode("utf-8"), cut
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}, line {number}: byte {line[exc.start]:#04x} of the word is not UTF-8; the file "
                        "must be UTF-8 text: convert it, e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8") from None


def _numbers(path: Path, number: int, line: bytes, cut: int, D: int, word: str) -> np.ndarray:
    """The D numbers after `cut` as float32 (D,); a DataError naming the line for a non-number or NaN/inf."""
    fields = line[cut + 1:].split(b" ")
    try:
        with np.errstate(over="ignore"):
            values = np.array(fields, dtype=np.float32)
    except ValueError:
        bad = next((f for f in fields if not _is_number(f)), fields[0])
        if b"\x00" in line:
            raise DataError(f"{path}, line {number}: binary data (a binary word2vec file?); rnnkit reads the "
                            "text format") from None
        shown = bad[:40].decode("utf-8", "replace")
        raise DataError(f"{path}, line {number}: {shown!r} (word {word!r}) is not a number; "
                        f"{FORMAT}") from None
    if not np.isfinite(values).all():
        raise DataError(f"{path}, line {number}: the vector of {word!r} holds NaN or infinity (or a number too "
                        "large for float32); fix or remove that line")
    return values


def _is_number(field: bytes) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _check_asked(path: Path, D: int, dim: int | None, dimension_from: str) -> None:
    if dim is not None and dim != D:
        raise DataError(f"{path} holds {D}-dimensional vectors ({dimension_from}) but --embedding-dim is {dim}; "
                        f"use --embedding-dim {D}, or leave it out so it follows the file")


def _coverage(found: np.ndarray, words: int) -> float:
    return float(found.sum()) / words if words else 0.0


def _token_coverage(tokens: Sequence[str], found: np.ndarray, counts: Mapping[str, int] | None) -> float | None:
    if counts is None:
        return None
    total = sum(counts.values())
    covered = sum(counts.get(token, 0) for token, hit in zip(tokens, found) if hit)
    return covered / total if total else 0.0


def _digest(vectors: np.ndarray, found: np.ndarray) -> str:
    ids = np.flatnonzero(found).astype(np.int64)
    digest = hashlib.sha256(f"{vectors.shape[1]}:".encode())
    digest.update(ids.tobytes())
    digest.update(np.ascontiguousarray(vectors[ids]).tobytes())
    return digest.hexdigest()

"""Unlabelled text as documents of word tokens, for a word language model.

What a path means (`read_documents`):

    aclImdb tarball or folder   every review of train/pos, train/neg and train/unsup (75,000 upstream)
                                is one document; test/ is never read (`imdb.iter_pretraining_texts`)
    a folder                    every *.txt file under it (recursively, sorted by path) is one document
    a file                      UTF-8 text; by default blank lines separate documents (paragraphs);
                                `per="line"`: one document per line; `per="file"`: the whole file is one

Words are the classifier's (`vocab.tokenize`: lower case, words with inner
apostrophes, "!" and "?"), so a vocabulary built here is one a classifier can
adopt. A document with no words is left out.

Words are numbered as they are first met (`Documents.words`, ids into it, int32
arrays), so 17 million tokens take 68 MB instead of a Python string each; the
word language model then ranks them by their count in its training documents.
Files are read line by line with a progress bar (tqdm.auto, on stderr) over
their bytes, or over the reviews of an aclImdb source. Only regular files are
read (`fileio.open_regular_file`: not a FIFO, a device or a link to one), each
at most MAX_FILE_BYTES.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from rnnkit.data import imdb
from rnnkit.data.vocab import tokenize
from rnnkit.errors import DataError
from rnnkit.fileio import open_regular_file

PER = ("paragraph", "line", "file")
MAX_FILE_BYTES = 4 << 30  # one text file: 4 GiB


@dataclass
class Documents:
    """Documents as word ids in order of first appearance.

    Attributes:
        words: id -> word (every distinct word read, first met first).
        docs: one int32 array of ids per document (each with at least one word).
        read: what was read, per source ("train/pos": 12500, "notes.txt": 40, ...) in documents.
        tokens: the words in all documents.
        truncated: True when reading stopped at `max_tokens`.
    """

    words: list[str] = field(default_factory=list)
    docs: list[np.ndarray] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    truncated: bool = False

    def summary(self) -> str:
        """One line: "75,000 documents (17,674,178 tokens) from train/neg 12,500, train/pos 12,500, ..."."""
        parts = ", ".join(f"{name} {count:,}" for name, count in self.read.items())
        cut = ", stopped at --max-tokens" if self.truncated else ""
        return f"{len(self.docs):,} documents ({self.tokens:,} tokens{cut}) from {parts}"


class _Reader:
    """Adds documents to a `Documents`, numbering new words, until `max_tokens` (None: no limit)."""

    def __init__(self, max_tokens: int | None) -> None:
        self.out, self.index, self.max_tokens = Documents(), {}, max_tokens

    @property
    def full(self) -> bool:
        return self.max_tokens is not None and self.out.tokens >= self.max_tokens

    def add(self, source: str, tokens: list[str]) -> None:
        if not tokens or self.full:
            return
        if self.max_tokens is not None and self.out.tokens + len(tokens) >= self.max_tokens:
            tokens = tokens[:self.max_tokens - self.out.tokens]
            self.out.truncated = True
        index = self.index
        ids = np.fromiter((index.setdefault(w, len(index)) for w in tokens), dtype=np.int32, count=len(tokens))
        self.out.docs.append(ids)
        self.out.tokens += len(ids)
        self.out.read[source] = self.out.read.get(source, 0) + 1

    def result(self) -> Documents:
        self.out.words = list(self.index)
        return self.out


def read_documents(paths: Iterable[str | os.PathLike], per: str = "paragraph", max_tokens: int | None = None,
                   progress: bool = True) -> Documents:
    """The documents of `paths` in order (see the module docstring); DataError naming the fix for a path that
    cannot be read, and when there are no words at all."""
    if per not in PER:
        raise DataError(f"documents must be one per {', '.join(PER)}; got {per!r}")
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("give at least one text: a file, a folder of .txt files or the aclImdb tarball")
    reader = _Reader(max_tokens)
    for path in paths:
        if not path.exists():
            raise DataError(f"{path} does not exist; pass text files, folders of .txt files or the aclImdb "
                            "tarball with --text")
        if imdb.is_imdb_source(path):
            _read_imdb(path, reader, progress)
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*.txt") if not p.is_dir())  # a FIFO is refused when opened
            if not files:
                raise DataError(f"{path} holds no .txt files; put the texts in .txt files (UTF-8) or pass files")
            _read_files(files, "file", reader, progress, name_of=lambda f, root=path: str(root))
        else:
            _read_files([path], per, reader, progress, name_of=lambda f: str(f))
        if reader.full:
            break
    documents = reader.result()
    if not documents.docs:
        raise DataError(f"no words in {', '.join(map(str, paths))} (only white space, punctuation or symbols); "
                        "a language model needs text to learn from")
    return documents


def documents_of(texts: Iterable[tuple[str, str]]) -> tuple[Documents, list[int]]:
    """(source, text) pairs as `Documents` (each text one document, the classifier's words), and the
    positions of the texts kept: a text without words is left out."""
    reader, kept = _Reader(None), []
    for position, (source, text) in enumerate(texts):
        tokens = tokenize(text)
        if tokens:
            reader.add(source, tokens)
            kept.append(position)
    return reader.result(), kept


def _read_imdb(path: Path, reader: _Reader, progress: bool) -> None:
    from tqdm.auto import tqdm

    texts = imdb.iter_pretraining_texts(path)
    with tqdm(desc=f"reading {path.name}", unit=" reviews", total=imdb.PRETRAIN_REVIEWS, file=sys.stderr,
              disable=not progress, mininterval=0.5) as bar:
        for folder, text in texts:
            reader.add(folder, tokenize(text))
            bar.update(1)
            if reader.full:
                break


def _read_files(files: list[Path], per: str, reader: _Reader, progress: bool, name_of) -> None:
    """Each file's documents (`per` paragraph | line | file), with one progress bar over their bytes."""
    from tqdm.auto import tqdm

    total = sum(f.stat().st_size for f in files if f.is_file())
    with tqdm(desc="reading text", unit="B", unit_scale=True, total=total, file=sys.stderr,
              disable=not progress, mininterval=0.5) as bar:
        for path in files:
            for tokens in _file_documents(path, per, bar):
                reader.add(name_of(path), tokens)
                if reader.full:
                    return


def _file_documents(path: Path, per: str, bar) -> Iterator[list[str]]:
    """The token lists of the documents in one file."""
    current: list[str] = []
    for line in _lines(path, bar):
        if per == "line":
            yield tokenize(line)
        elif per == "paragraph" and not line.strip():
            yield current
            current = []
        else:
            current.extend(tokenize(line))
    yield current


def _lines(path: Path, bar) -> Iterator[str]:
    """The lines of a UTF-8 file (a BOM dropped), read in pieces; DataError for a binary or non-UTF-8 file."""
    with open_regular_file(path, MAX_FILE_BYTES, hint="split it into smaller files") as f:
        for number, raw in enumerate(f, start=1):
            bar.update(len(raw))
            if number == 1:
                if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise DataError(f"{path} is UTF-16 text; convert it to UTF-8 first, "
                                    "e.g. iconv -f utf-16 -t utf-8 FILE > FILE.utf8")
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if b"\x00" in raw:
                raise DataError(f"{path} holds a NUL byte on line {number}: it looks like a binary file, not text; "
                                "pass plain-text files")
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path} is not UTF-8 text (byte {raw[exc.start]:#04x} on line {number}); convert "
                                "it first, e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8") from None

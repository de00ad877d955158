"""The IMDB Large Movie Review Dataset (Maas et al., 2011).

Reads the original ``aclImdb_v1.tar.gz`` (streamed, never unpacked to disk) or
an unpacked ``aclImdb/`` folder: ``{train,test}/{pos,neg}/ID_RATING.txt``.

The tokenized corpus is cached (safetensors + JSON) under
``$RNNKIT_CACHE`` (default ``~/.cache/rnnkit``), keyed by the source file and
the tokenizer, so a second run does not re-read 50,000 files. The cache stores
each review as ids into the *full* training vocabulary ranked by frequency;
a vocabulary of any size is a prefix of it (see `vocab.remap_to_size`).

Bad data: a missing split, a misnamed file or a review whose rating
contradicts its folder (pos/ holds 7-10, neg/ 1-4) is a DataError naming the
file; a review with no words is skipped with a warning; stray bytes that are
not UTF-8 are replaced (U+FFFD), so one bad byte never loses a review. The
cache only saves time: when it cannot be written (full disk, read-only home)
a warning is printed and the run goes on; a damaged cache is rebuilt.

Only regular files are read, within limits: the tarball itself, and each
review file of a folder (a symlink to /dev/zero or a FIFO is a DataError
before a byte is read); tar members that are links, devices or FIFOs are
skipped; a review over MAX_REVIEW_BYTES, or reviews over MAX_CORPUS_BYTES in
all (a decompression bomb), are refused before they are extracted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from rnnkit.config import dumps
from rnnkit.data.vocab import PAD, TOKENIZER_NAME, UNK, Vocab, count_tokens, remap_to_size, tokenize
from rnnkit.errors import DataError
from rnnkit.fileio import atomic_write_bytes, atomic_write_text, open_regular_file, read_regular_bytes

UPSTREAM_URL = "http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
UPSTREAM_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"  # published checksum of the upstream tarball
FILENAME = "aclImdb_v1.tar.gz"
SPLITS = ("train", "test")
LABELS = {"neg": 0, "pos": 1}
RATINGS = {"neg": range(1, 5), "pos": range(7, 11)}  # the data set's rule: <= 4 negative, >= 7 positive
CACHE_FORMAT = 2  # 2: reviews with no words are left out
MAX_SOURCE_BYTES = 4 << 30   # the tarball (84 MB upstream)
MAX_REVIEW_BYTES = 1 << 20   # one review file (the longest upstream is 14 kB)
MAX_CORPUS_BYTES = 2 << 30   # all reviews together, decompressed (65 MB upstream)
_REVIEW = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_REVIEW_FOLDER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/[^/]+$")


def cache_root() -> Path:
    return Path(os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit")


def default_data_path() -> Path:
    return cache_root() / "data" / FILENAME


def locate(path: str | os.PathLike | None) -> Path:
    """The IMDB source to read: `path`, else $RNNKIT_IMDB, else the download location.

    Raises DataError naming every way to fix a missing copy.
    """
    candidates = [Path(path)] if path else []
    if not path and os.environ.get("RNNKIT_IMDB"):
        candidates.append(Path(os.environ["RNNKIT_IMDB"]))
    if not path:
        candidates.append(default_data_path())
    for candidate in candidates:
        if candidate.exists():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise DataError(
        f"no IMDB data found (looked at {tried}). Fix: run `rnnkit data imdb` to download it "
        f"(needs internet), or pass --data PATH to {FILENAME} or an unpacked aclImdb/ folder, "
        "or set RNNKIT_IMDB=PATH. Offline? `rnnkit demo` trains on built-in generated reviews.")


@dataclass(frozen=True)
class Review:
    split: str
    label: int
    rating: int
    text: str
    where: str = ""  # the file it came from (for messages)


def iter_reviews(source: Path) -> Iterator[Review]:
    """Every labelled review in a tarball or an aclImdb folder (unsup reviews are skipped).

    Raises DataError for a missing split, a misnamed review file, or a review
    whose rating contradicts its folder (a mislabelled file).
    """
    if source.is_dir():
        yield from _iter_folder(source)
    else:
        yield from _iter_tarball(source)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")  # a stray bad byte must not lose a review


def _iter_tarball(source: Path) -> Iterator[Review]:
    budget = _Budget(str(source))
    try:
        with open_regular_file(source, MAX_SOURCE_BYTES) as raw, tarfile.open(fileobj=raw, mode="r|*") as archive:
            for member in archive:
                match = _REVIEW.search(member.name)
                if not match:
                    if _REVIEW_FOLDER.search(member.name) and member.name.endswith(".txt"):
                        raise DataError(f"{source}: {member.name}: IMDB review files are named ID_RATING.txt; "
                                        "rename or remove it")
                    continue
                if not member.isfile():  # a link, device or FIFO is never read
                    continue
                where = f"{source}: {member.name}"
                budget.take(where, member.size)  # before extracting: a gzip bomb declares its size
                split, label, _, rating = match.groups()
                yield _review(where, split, label, rating, archive.extractfile(member).read(member.size))
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{source} is not a readable IMDB tarball ({exc}); re-download it with "
                        "`rnnkit data imdb` or pass an unpacked aclImdb/ folder") from None


def _iter_folder(source: Path) -> Iterator[Review]:
    root = source / "aclImdb" if (source / "aclImdb").is_dir() else source
    budget = _Budget(str(source))
    for split in SPLITS:
        for label in LABELS:
            folder = root / split / label
            if not folder.is_dir():
                raise DataError(f"{folder} is missing; an IMDB folder needs train/ and test/, each with pos/ and neg/")
            for path in sorted(folder.glob("*.txt")):
                match = re.fullmatch(r"(\d+)_(\d+)\.txt", path.name)
                if not match:
                    raise DataError(f"{path}: IMDB review files are named ID_RATING.txt; rename or remove it")
                # a regular file only (a symlink to /dev/zero or a FIFO is refused before a byte is read)
                raw = read_regular_bytes(path, MAX_REVIEW_BYTES, hint="a review is a few kB; remove the file")
                budget.take(str(path), len(raw))
                yield _review(str(path), split, label, match.group(2), raw)


# --------------------------------------------------------------------------- unlabelled text for pretraining

PRETRAIN_FOLDERS = ("train/pos", "train/neg", "train/unsup")  # never test/: its reviews judge the classifier
PRETRAIN_REVIEWS = 75_000  # 12,500 + 12,500 + 50,000 upstream
_TRAIN_TEXT = re.compile(r"(?:^|/)aclImdb/(train/(?:pos|neg|unsup))/(\d+)_(\d+)\.txt$")


def is_imdb_source(path: Path) -> bool:
    """Whether `path` is an aclImdb tarball (*.tar.gz, *.tgz, *.tar) or an aclImdb folder (it, or its
    aclImdb/, has train/pos, train/neg or train/unsup)."""
    if path.is_dir():
        root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
        return any((root / folder).is_dir() for folder in PRETRAIN_FOLDERS)
    return path.name.endswith((".tar.gz", ".tgz", ".tar"))


def iter_pretraining_texts(source: Path) -> Iterator[tuple[str, str]]:
    """(folder, text) of every review in aclImdb's train/pos, train/neg and train/unsup, in a tarball or a
    folder. test/ is never read: a folder's test/ is never opened, and a tarball's test/ members are passed
    over without being extracted (the gzip stream runs through them). Reviews are checked as `iter_reviews`
    checks them (regular files, sizes, the corpus total); stray bytes that are not UTF-8 are replaced."""
    if source.is_dir():
        yield from _pretraining_folder(source)
    else:
        yield from _pretraining_tarball(source)


def _pretraining_tarball(source: Path) -> Iterator[tuple[str, str]]:
    budget, found = _Budget(str(source)), 0
    try:
        with open_regular_file(source, MAX_SOURCE_BYTES) as raw, tarfile.open(fileobj=raw, mode="r|*") as archive:
            for member in archive:
                match = _TRAIN_TEXT.search(member.name)
                if not match or not member.isfile():  # test/, other files, links, devices: never extracted
                    continue
                where = f"{source}: {member.name}"
                budget.take(where, member.size)
                found += 1
                yield match.group(1), _decode(archive.extractfile(member).read(member.size))
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{source} is not a readable aclImdb tarball ({exc}); re-download it with "
                        "`rnnkit data imdb`, or unpack it and pass the folder") from None
    if not found:
        raise DataError(f"{source} holds no aclImdb/train/{{pos,neg,unsup}}/ID_RATING.txt reviews; rnnkit reads "
                        "aclImdb tarballs only: unpack another archive and pass its folder of .txt files")


def _pretraining_folder(source: Path) -> Iterator[tuple[str, str]]:
    root = source / "aclImdb" if (source / "aclImdb").is_dir() else source
    budget = _Budget(str(source))
    for folder in PRETRAIN_FOLDERS:
        directory = root / folder
        if not directory.is_dir():
            continue  # e.g. a copy without unsup/: the folders that are there are read
        for path in sorted(directory.glob("*.txt")):
            if not re.fullmatch(r"(\d+)_(\d+)\.txt", path.name):
                raise DataError(f"{path}: IMDB review files are named ID_RATING.txt; rename or remove it")
            raw = read_regular_bytes(path, MAX_REVIEW_BYTES, hint="a review is a few kB; remove the file")
            budget.take(str(path), len(raw))
            yield folder, _decode(raw)


class _Budget:
    """The bytes of reviews read so far from one source, refused past MAX_REVIEW_BYTES each or MAX_CORPUS_BYTES
    in all (the real data set: 50,000 reviews of at most 14 kB, 65 MB in all)."""

    def __init__(self, source: str) -> None:
        self.source, self.used = source, 0

    def take(self, where: str, size: int) -> None:
        if size > MAX_REVIEW_BYTES:
            raise DataError(f"{where} is {size:,} bytes, over the {MAX_REVIEW_BYTES:,}-byte limit for one review "
                            "(IMDB reviews are a few kB); remove it")
        self.used += size
        if self.used > MAX_CORPUS_BYTES:
            raise DataError(f"{self.source}: the reviews add up to more than {MAX_CORPUS_BYTES:,} bytes; this is not "
                            "the IMDB data set (65 MB of reviews) — re-download it with `rnnkit data imdb`")


def _review(where: str, split: str, label: str, rating: str, raw: bytes) -> Review:
    """A review, after checking that its rating agrees with its folder (pos: 7-10, neg: 1-4)."""
    value = int(rating)
    if value not in RATINGS[label]:
        raise DataError(f"{where}: a review rated {value}/10 is filed under {label}/, which holds ratings "
                        f"{min(RATINGS[label])}-{max(RATINGS[label])}; the file is mislabelled — move it or fix its name")
    return Review(split, LABELS[label], value, _decode(raw), where)


@dataclass
class ImdbCorpus:
    """Tokenized IMDB, as ids into the full training vocabulary.

    Attributes:
        words: every training word, most frequent first (ids 2.. in order).
        ids: split -> list of int32 arrays, one per review.
        labels: split -> int64 (N,) with 1 = positive.
    """

    words: list[str]
    ids: dict[str, list[np.ndarray]]
    labels: dict[str, np.ndarray]

    def vocab(self, size: int | None) -> Vocab:
        """The `size` most frequent training words (+ pad, unk); None = every word."""
        tokens = (PAD, UNK, *self.words)
        return Vocab(tokens if size is None else tokens[:size])

    def split(self, name: str, vocab_size: int | None) -> tuple[list[np.ndarray], np.ndarray]:
        """Reviews of `name` encoded for a vocabulary of `vocab_size` (rarer words -> unk)."""
        size = len(self.words) + 2 if vocab_size is None else vocab_size
        return [remap_to_size(r, size) for r in self.ids[name]], self.labels[name]


def load_corpus(source: str | os.PathLike | None, progress: bool = True) -> ImdbCorpus:
    """Tokenize IMDB once and cache it; later calls read the cache (about a second)."""
    source = locate(source)
    cache = cache_root() / f"imdb-{_cache_key(source)}"
    if (cache / "corpus.json").is_file():
        try:
            return _read_cache(cache)
        except Exception:  # a damaged or stale cache (any way it breaks) is rebuilt below
            pass
    corpus = _tokenize_source(source, progress)
    try:
        _write_cache(cache, corpus)
    except OSError as exc:  # the cache only saves time: a full disk or a read-only home must not stop a run
        print(f"rnnkit: warning: could not cache the tokenized reviews in {cache} ({exc.strerror}); "
              "continuing without a cache (set RNNKIT_CACHE to a writable folder)", file=sys.stderr)
    return corpus


def _cache_key(source: Path) -> str:
    stat = source.stat()
    text = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{TOKENIZER_NAME}|{CACHE_FORMAT}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _tokenize_source(source: Path, progress: bool) -> ImdbCorpus:
    from tqdm import tqdm

    tokens: dict[str, list[list[str]]] = {s: [] for s in SPLITS}
    labels: dict[str, list[int]] = {s: [] for s in SPLITS}
    empty: list[str] = []
    for review in tqdm(iter_reviews(source), desc=f"reading {source.name}", unit=" reviews",
                       total=50_000, disable=not progress):
        words = tokenize(review.text)
        if not words:  # nothing to read (empty, only symbols): a recurrent model needs at least one step
            empty.append(review.where)
            continue
        tokens[review.split].append(words)
        labels[review.split].append(review.label)
    if empty:
        print(f"rnnkit: warning: skipped {len(empty)} review(s) with no words (first: {empty[0]})", file=sys.stderr)
    check_complete(source, labels)
    counts = count_tokens(tokens["train"])  # the test split never shapes the vocabulary
    vocab = Vocab.build(counts)
    ids = {s: [np.asarray(vocab.encode(t), dtype=np.int32) for t in tokens[s]] for s in SPLITS}
    return ImdbCorpus(list(vocab.tokens[2:]), ids, {s: np.asarray(labels[s], dtype=np.int64) for s in SPLITS})


def check_complete(source: Path, labels: dict[str, list[int]]) -> None:
    for split in SPLITS:
        got = np.bincount(labels[split], minlength=2) if labels[split] else np.zeros(2, int)
        if got.min() == 0:
            raise DataError(f"{source}: the {split} split has {got[1]} positive and {got[0]} negative reviews; "
                            "the data set is incomplete — re-download it with `rnnkit data imdb`")


def _write_cache(cache: Path, corpus: ImdbCorpus) -> None:
    from safetensors.numpy import save  # to bytes, so a full disk is an OSError from our own write

    arrays = {}
    for split in SPLITS:
        reviews = corpus.ids[split]
        arrays[f"{split}_ids"] = np.concatenate(reviews).astype(np.int32) if reviews else np.zeros(0, np.int32)
        arrays[f"{split}_lengths"] = np.asarray([len(r) for r in reviews], dtype=np.int64)
        arrays[f"{split}_labels"] = corpus.labels[split]
    atomic_write_bytes(cache / "corpus.safetensors", save(arrays))
    atomic_write_text(cache / "corpus.json", dumps({"format": CACHE_FORMAT, "tokenizer": TOKENIZER_NAME,
                                                    "words": corpus.words}))


def _read_cache(cache: Path) -> ImdbCorpus:
    from safetensors.numpy import load_file

    meta = json.loads((cache / "corpus.json").read_text(encoding="utf-8"))
    if meta.get("format") != CACHE_FORMAT or meta.get("tokenizer") != TOKENIZER_NAME:
        raise ValueError("stale cache")
    arrays = load_file(str(cache / "corpus.safetensors"))
    ids, labels = {}, {}
    for split in SPLITS:
        lengths = arrays[f"{split}_lengths"]
        if int(lengths.sum()) != len(arrays[f"{split}_ids"]) or len(lengths) != len(arrays[f"{split}_labels"]):
            raise ValueError("inconsistent cache")
        bounds = np.cumsum(lengths)[:-1]
        ids[split] = np.split(arrays[f"{split}_ids"], bounds)
        labels[split] = arrays[f"{split}_labels"]
    return ImdbCorpus(meta["words"], ids, labels)

"""The IMDB Large Movie Review Dataset (Maas et al., 2011).

Reads the original ``aclImdb_v1.tar.gz`` (streamed, never unpacked to disk) or
an unpacked ``aclImdb/`` folder: ``{train,test}/{pos,neg}/ID_RATING.txt``.

The tokenized corpus is cached (safetensors + JSON) under
``$RNNKIT_CACHE`` (default ``~/.cache/rnnkit``), keyed by the source file and
the tokenizer, so a second run does not re-read 50,000 files. The cache stores
each review as ids into the *full* training vocabulary ranked by frequency;
a vocabulary of any size is a prefix of it (see `vocab.remap_to_size`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from rnnkit.config import dumps
from rnnkit.data.vocab import PAD, TOKENIZER_NAME, UNK, Vocab, count_tokens, remap_to_size, tokenize
from rnnkit.errors import DataError
from rnnkit.fileio import atomic_write_text, atomic_write_with

UPSTREAM_URL = "http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
UPSTREAM_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"  # published checksum of the upstream tarball
FILENAME = "aclImdb_v1.tar.gz"
SPLITS = ("train", "test")
LABELS = {"neg": 0, "pos": 1}
CACHE_FORMAT = 1
_REVIEW = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


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


def iter_reviews(source: Path) -> Iterator[Review]:
    """Every labelled review in a tarball or an aclImdb folder (unsup reviews are skipped)."""
    if source.is_dir():
        yield from _iter_folder(source)
    else:
        yield from _iter_tarball(source)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")  # a stray bad byte must not lose a review


def _iter_tarball(source: Path) -> Iterator[Review]:
    try:
        with tarfile.open(source, mode="r|*") as archive:
            for member in archive:
                match = _REVIEW.search(member.name)
                if not match or not member.isfile():
                    continue
                handle = archive.extractfile(member)
                split, label, _, rating = match.groups()
                yield Review(split, LABELS[label], int(rating), _decode(handle.read()))
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{source} is not a readable IMDB tarball ({exc}); re-download it with "
                        "`rnnkit data imdb` or pass an unpacked aclImdb/ folder") from None


def _iter_folder(source: Path) -> Iterator[Review]:
    root = source / "aclImdb" if (source / "aclImdb").is_dir() else source
    for split in SPLITS:
        for label, value in LABELS.items():
            folder = root / split / label
            if not folder.is_dir():
                raise DataError(f"{folder} is missing; an IMDB folder needs train/ and test/, each with pos/ and neg/")
            for path in sorted(folder.glob("*.txt")):
                match = re.fullmatch(r"(\d+)_(\d+)\.txt", path.name)
                if not match:
                    raise DataError(f"{path}: IMDB review files are named ID_RATING.txt; rename or remove it")
                yield Review(split, value, int(match.group(2)), _decode(path.read_bytes()))


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
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    corpus = _tokenize_source(source, progress)
    _write_cache(cache, corpus)
    return corpus


def _cache_key(source: Path) -> str:
    stat = source.stat()
    text = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{TOKENIZER_NAME}|{CACHE_FORMAT}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _tokenize_source(source: Path, progress: bool) -> ImdbCorpus:
    from tqdm import tqdm

    tokens: dict[str, list[list[str]]] = {s: [] for s in SPLITS}
    labels: dict[str, list[int]] = {s: [] for s in SPLITS}
    for review in tqdm(iter_reviews(source), desc=f"reading {source.name}", unit=" reviews",
                       total=50_000, disable=not progress):
        tokens[review.split].append(tokenize(review.text))
        labels[review.split].append(review.label)
    _check_complete(source, labels)
    counts = count_tokens(tokens["train"])  # the test split never shapes the vocabulary
    vocab = Vocab.build(counts)
    ids = {s: [np.asarray(vocab.encode(t), dtype=np.int32) for t in tokens[s]] for s in SPLITS}
    return ImdbCorpus(list(vocab.tokens[2:]), ids, {s: np.asarray(labels[s], dtype=np.int64) for s in SPLITS})


def _check_complete(source: Path, labels: dict[str, list[int]]) -> None:
    for split in SPLITS:
        got = np.bincount(labels[split], minlength=2) if labels[split] else np.zeros(2, int)
        if got.min() == 0:
            raise DataError(f"{source}: the {split} split has {got[1]} positive and {got[0]} negative reviews; "
                            "the data set is incomplete — re-download it with `rnnkit data imdb`")


def _write_cache(cache: Path, corpus: ImdbCorpus) -> None:
    from safetensors.numpy import save_file

    arrays = {}
    for split in SPLITS:
        reviews = corpus.ids[split]
        arrays[f"{split}_ids"] = np.concatenate(reviews).astype(np.int32) if reviews else np.zeros(0, np.int32)
        arrays[f"{split}_lengths"] = np.asarray([len(r) for r in reviews], dtype=np.int64)
        arrays[f"{split}_labels"] = corpus.labels[split]
    atomic_write_with(cache / "corpus.safetensors", lambda tmp: save_file(arrays, str(tmp)))
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
        bounds = np.cumsum(arrays[f"{split}_lengths"])[:-1]
        ids[split] = np.split(arrays[f"{split}_ids"], bounds)
        labels[split] = arrays[f"{split}_labels"]
    return ImdbCorpus(meta["words"], ids, labels)

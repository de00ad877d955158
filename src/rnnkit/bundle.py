"""Save and load a model directory (a "bundle"): JSON and safetensors, never pickle.

A bundle directory holds::

    config.json         format version, task, ModelConfig, training and data settings
    vocab.json          the vocabulary (or vocabularies) the task needs
    model.safetensors   the weights, named as in `rnnkit.params`
    history.json, *.png training history and plots (written by the trainer)

Loading checks everything before returning anything: the format version, that
every file is there and parses, that the config's sizes are within bounds
(`rnnkit.config.MAX_LAYERS`, ...) and its parameters in MAX_WEIGHTS_BYTES,
that config.json records the checksums, and that the weights match the config
tensor for tensor (names, shapes, dtype) and the vocabulary size. JSON integers
longer than MAX_INT_DIGITS are refused while parsing. Whether the model fits
its task (a sentiment model gives one logit, ...) is the task's predictor's
check (`check_fits`). The safetensors
header is parsed and checked by rnnkit itself before any tensor is read (its
size, duplicate names, dtypes, byte ranges that tile the data exactly, every
name and shape against the config), so a damaged or hostile file is refused
before anything is allocated for it; nothing is ever unpickled.

Saving stages all three files as fsynced temporary files first, then renames
them into place, config.json last; config.json records the SHA-256 of the
weights and the vocabulary, so a bundle torn by a crash between two renames is
refused instead of being loaded with the wrong vocabulary. A failed save (a
full disk) leaves the previous bundle untouched and no temporary file behind.

This module imports numpy only (no torch), so `predict` and `serve` start fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit import __version__
from rnnkit.config import ModelConfig, dumps
from rnnkit.errors import BundleError, ConfigError
from rnnkit.fileio import atomic_paths
from rnnkit.params import parameter_shapes

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "model.safetensors"
TASKS = ("sentiment", "classify", "charlm", "wordlm", "seq2seq", "condlm")
DOCUMENT_FIELDS = ("format_version", "rnnkit_version", "task", "model", "settings", "train", "metrics", "files")
MAX_JSON_BYTES = 64 * 1024 * 1024  # a 30,000-word vocabulary is about 0.5 MB
MAX_INT_DIGITS = 64  # the longest integer rnnkit's JSON holds is a 20-digit seed; Python refuses > 4,300 digits
MAX_WEIGHTS_BYTES = 4 << 30  # 1 billion float32 parameters; rnnkit's default models have 1-5 million
MAX_HEADER_BYTES = 1024 * 1024  # an rnnkit weights header is ~100 bytes per tensor (safetensors' own cap: 100 MB)
# How pickles and torch.save zips begin; used only to word the refusal of a file that is not
# safetensors (a real safetensors header length may start with b"\x80" too, e.g. 1152 bytes)
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")
PICKLE_PROTOCOL_0 = (b"(", b"c", b"]", b"}", b"N", b"I", b"S", b"V")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # a JSON escape of U+D800..U+DFFF
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".h5", ".keras", ".npy", ".npz", ".joblib")


@dataclass
class Bundle:
    """A loaded bundle: everything needed to rebuild and run the model.

    Attributes:
        path: the bundle directory.
        task: what the model does (sentiment | classify | charlm | wordlm | seq2seq).
        config: the model description.
        vocab: the parsed vocab.json (its layout is the task's).
        tensors: parameter name -> float32 array, exactly `parameter_shapes(config)`.
        settings: task settings saved at training time (maxlen, padding, ...).
        train: the training configuration used, as a dict (informational).
        metrics: metrics recorded at training time (informational).
    """

    path: Path
    task: str
    config: ModelConfig
    vocab: dict[str, Any]
    tensors: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def save_bundle(directory: str | os.PathLike, task: str, config: ModelConfig, vocab: dict[str, Any],
                tensors: dict[str, np.ndarray], settings: dict[str, Any] | None = None,
                train: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None) -> Path:
    """Write a bundle into `directory` (created if needed); returns its path.

    Weights are checked against the config before anything is written. The
    three files are staged (written and fsynced) first, then renamed into place
    with config.json last; config.json records the SHA-256 of the other two.
    """
    from safetensors.numpy import save

    directory = Path(directory)
    arrays = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in tensors.items()}
    _check_model_size(parameter_shapes(config), directory / CONFIG_FILE)  # never save what could not be loaded
    _check_tensors(arrays, config, directory / WEIGHTS_FILE)
    _check_vocab(vocab, config, task, directory / VOCAB_FILE)
    if directory.exists() and not directory.is_dir():
        raise BundleError(f"cannot save a bundle to {directory}: it is a file; choose a directory path")
    weights = save(arrays)
    vocab_bytes = _utf8(dumps(vocab), directory / VOCAB_FILE)
    document = {
        "format_version": FORMAT_VERSION,
        "rnnkit_version": __version__,
        "task": task,
        "model": config.to_dict(),
        "settings": settings or {},
        "train": train or {},
        "metrics": metrics or {},
        "files": {WEIGHTS_FILE: _sha256(weights), VOCAB_FILE: _sha256(vocab_bytes)},
    }
    contents = (weights, vocab_bytes, _utf8(dumps(document), directory / CONFIG_FILE))
    with atomic_paths(*(directory / name for name in (WEIGHTS_FILE, VOCAB_FILE, CONFIG_FILE))) as temps:
        for tmp, data in zip(temps, contents):
            tmp.write_bytes(data)
    return directory


def load_bundle(directory: str | os.PathLike) -> Bundle:
    """Load and fully validate a bundle; raise BundleError naming the file and the problem."""
    directory = Path(directory)
    if not directory.exists():
        raise BundleError(f"no bundle at {directory}: the directory does not exist; "
                          "pass the --out directory of a finished `rnnkit train` run")
    if not directory.is_dir():
        raise BundleError(f"{directory} is a file, but a bundle is a directory "
                          f"(with {CONFIG_FILE}, {VOCAB_FILE}, {WEIGHTS_FILE})")
    config_path = directory / CONFIG_FILE
    config_bytes = read_bytes(config_path, "bundle config", MAX_JSON_BYTES)
    document = parse_json(config_bytes, config_path, "bundle config")
    _refuse_lone_surrogates(config_bytes, document, config_path, "bundle config")
    if not isinstance(document, dict):
        raise BundleError(f"{config_path} must hold a JSON object; it is not an rnnkit bundle config")
    version = document.get("format_version")
    if type(version) is not int:
        raise BundleError(f"{config_path} has no integer format_version; it is not an rnnkit bundle")
    if version > FORMAT_VERSION:
        raise BundleError(f"{config_path} says bundle format {version}, newer than this rnnkit "
                          f"({__version__}, format {FORMAT_VERSION}); upgrade rnnkit to load it")
    if version < 1:
        raise BundleError(f"{config_path} says unknown bundle format {version}; it is not an rnnkit bundle")
    unknown = sorted(str(key) for key in set(document) - set(DOCUMENT_FIELDS))
    if unknown:
        raise BundleError(f"{config_path} has unknown fields {unknown[:5]}; it was written by a newer or "
                          "different program — upgrade rnnkit, or retrain")
    task = document.get("task")
    if task not in TASKS:
        raise BundleError(f"{config_path}: unknown task {task!r} (expected one of {', '.join(TASKS)})")
    try:
        config = ModelConfig.from_dict(document.get("model"))  # every size bounded before any name is built
        expected = parameter_shapes(config)
    except (ConfigError, NotImplementedError) as exc:
        raise BundleError(f"{config_path}: {exc}") from None
    files = _checksums(document, config_path)
    _check_model_size(expected, config_path)
    vocab_bytes = read_bytes(directory / VOCAB_FILE, "vocabulary", MAX_JSON_BYTES)
    vocab = parse_json(vocab_bytes, directory / VOCAB_FILE, "vocabulary")
    _refuse_lone_surrogates(vocab_bytes, vocab, directory / VOCAB_FILE, "vocabulary")
    _check_vocab(vocab, config, task, directory / VOCAB_FILE)
    weights_bytes, tensors = _read_weights(directory / WEIGHTS_FILE, expected)
    _check_tensors(tensors, config, directory / WEIGHTS_FILE)
    for name, data in ((WEIGHTS_FILE, weights_bytes), (VOCAB_FILE, vocab_bytes)):
        if files[name] != _sha256(data):
            raise BundleError(f"{directory / name} is not the file {CONFIG_FILE} was saved with (its SHA-256 "
                              "differs): the bundle was torn by an interrupted save or edited by hand; "
                              "re-save it or retrain")
    return Bundle(path=directory, task=task, config=config, vocab=vocab, tensors=tensors,
                  settings=_dict(document, "settings", config_path), train=_dict(document, "train", config_path),
                  metrics=_dict(document, "metrics", config_path))


def _checksums(document: dict, path: Path) -> dict[str, str]:
    """The SHA-256 that config.json records for the weights and the vocabulary; a bundle without them is refused
    (taking them out must not turn the check off)."""
    files = _dict(document, "files", path)
    missing = [name for name in (WEIGHTS_FILE, VOCAB_FILE)
               if not (isinstance(files.get(name), str) and files[name].startswith("sha256:"))]
    if missing:
        raise BundleError(f"{path} records no SHA-256 for {' and '.join(missing)} (its \"files\" field): the bundle "
                          "is incomplete, was edited by hand, or was saved by an older rnnkit that did not record "
                          "them; it is refused because its files cannot be checked — retrain, or save it again "
                          "with this rnnkit from a copy you trust")
    return files


def _check_model_size(expected: dict[str, tuple[int, ...]], path: Path) -> None:
    """The parameters a config implies, refused when their float32 bytes are over MAX_WEIGHTS_BYTES (before any
    file is read; each size alone is bounded by ModelConfig, but their products are not)."""
    count = sum(math.prod(shape) for shape in expected.values())
    if 4 * count > MAX_WEIGHTS_BYTES:
        raise BundleError(f"{path}: the model it describes has {count:,} parameters ({4 * count:,} bytes as float32), "
                          f"more than the {MAX_WEIGHTS_BYTES:,} bytes rnnkit loads; the config is damaged or crafted")


def check_fit(bundle: Bundle, problems: list[str]) -> None:
    """BundleError listing `problems` (what the bundle's task needs that its model lacks), if there are any.

    Each task's predictor calls it from its `check_fits`, before building anything: a bundle can pass
    every check of `load_bundle` (consistent shapes) and still not be a model of its task.
    """
    if problems:
        raise BundleError(f"{bundle.path / CONFIG_FILE}: a {bundle.task} model needs {'; '.join(problems)}: the "
                          "bundle does not fit its task (damaged or edited by hand) — retrain it")


@contextlib.contextmanager
def reading_part(bundle: Bundle, name: str):
    """Turn a BundleError or ConfigError raised while a predictor reads part `name` of `bundle` (its vocabulary,
    its settings) into a BundleError naming the file."""
    try:
        yield
    except (BundleError, ConfigError) as exc:
        raise BundleError(f"{bundle.path / name}: {exc}") from None


def read_bytes(path: Path, what: str, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or BundleError saying which file and why."""
    size = _file_size(path, what)
    if size > limit:
        raise BundleError(f"{what} file {path} is {size} bytes, more than the {limit} this rnnkit "
                          "reads for it; refusing to load it")
    try:
        with open(path, "rb") as handle:
            data = handle.read(size + 1)  # read(n) allocates n bytes up front: ask for what is there
    except OSError as exc:
        raise BundleError(f"cannot read {what} file {path} ({exc.strerror}); check its permissions") from None
    if len(data) != size:
        raise BundleError(f"{what} file {path} changed while it was read; try again")
    return data


def _file_size(path: Path, what: str) -> int:
    """The size of `path`, refusing what is missing, unreadable or not a regular file (a directory, a pipe)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise BundleError(f"{what} file {path} is missing; the bundle is incomplete — retrain or copy the "
                          f"whole directory{_pickle_hint(path)}") from None
    except OSError as exc:
        raise BundleError(f"cannot read {what} file {path} ({exc.strerror}); check its permissions") from None
    if stat.S_ISDIR(info.st_mode):
        raise BundleError(f"{what} file {path} is a directory, not a file; the bundle is damaged — "
                          "retrain or copy the whole bundle again")
    if not stat.S_ISREG(info.st_mode):
        raise BundleError(f"{what} file {path} is not a regular file (a device, pipe or socket); refusing to read it")
    return info.st_size


class _LongInteger(ValueError):
    """An integer literal longer than MAX_INT_DIGITS (raised while parsing, before int() sees it)."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _LongInteger(len(text.lstrip("-")))
    return int(text)


def parse_json(data: bytes, path: Path, what: str) -> Any:
    """Parse JSON bytes, or raise BundleError saying which file and why.

    An integer longer than MAX_INT_DIGITS digits is refused (no rnnkit setting is that long, and Python's
    int() refuses 4,300+ digits with a ValueError).
    """
    try:
        return json.loads(data.decode("utf-8"), parse_int=_parse_int)
    except _LongInteger as exc:
        raise BundleError(f"{what} file {path} holds a {exc.args[0]:,}-digit integer, longer than any rnnkit "
                          f"writes (at most {MAX_INT_DIGITS} digits); the file is damaged or crafted") from None
    except UnicodeDecodeError:
        raise BundleError(f"{what} file {path} is not UTF-8 text; the bundle is damaged") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{what} file {path} is not valid JSON ({exc.msg}, line {exc.lineno}); "
                          "the bundle is damaged") from None
    except RecursionError:
        raise BundleError(f"{what} file {path} is nested too deeply to be an rnnkit file; the bundle is damaged") from None


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file, or raise BundleError saying which file and why."""
    return parse_json(read_bytes(path, what, MAX_JSON_BYTES), path, what)


def _refuse_lone_surrogates(data: bytes, value: Any, path: Path, what: str) -> None:
    """JSON can spell a lone surrogate ("\\ud800"), which is not text: a vocabulary holding one loads, then a
    character or word written out fails mid-stream. Refused as `save_bundle` refuses to write one."""
    if not _SURROGATE_ESCAPE.search(data):  # the common case: nothing to check (a valid pair is checked too)
        return
    try:
        dumps(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BundleError(f"{what} file {path} holds a lone surrogate (U+{ord(exc.object[exc.start]):04X}), which "
                          "is not valid Unicode text; the file is damaged or was edited by hand — retrain") from None


def read_weights(path: Path, expected: dict[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """Read a safetensors file as float32 arrays; refuse pickles and damaged files.

    With `expected` (name -> shape, from `parameter_shapes`), names and shapes
    are checked from the header, before any tensor data is read.
    """
    return _read_weights(path, expected)[1]


def _read_weights(path: Path, expected: dict[str, tuple[int, ...]] | None) -> tuple[bytes, dict[str, np.ndarray]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    size = _file_size(path, "weights")
    if size > MAX_WEIGHTS_BYTES:  # a sparse file can claim terabytes; it is refused before a byte is read
        raise BundleError(f"weights file {path} is {size:,} bytes, more than the {MAX_WEIGHTS_BYTES:,} rnnkit "
                          "loads; refusing to load it")
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            header_size = _header_size(prefix, handle.read(1), size, path)
            handle.seek(8)
            header = _parse_header(handle.read(header_size), path)
            _check_layout(header, size - 8 - header_size, path)
            if expected is not None:
                _check_header_against(header, expected, path)
            handle.seek(0)
            data = handle.read(size + 1)
    except OSError as exc:
        raise BundleError(f"cannot read weights file {path} ({exc.strerror}); check its permissions") from None
    if len(data) != size:
        raise BundleError(f"weights file {path} changed while it was read; try again")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, MemoryError) as exc:  # a second, independent parser agrees or refuses
        raise BundleError(f"weights file {path} is damaged ({exc}); re-save the bundle or retrain") from None
    return data, tensors


def _header_size(prefix: bytes, first: bytes, size: int, path: Path) -> int:
    """The header length a safetensors file starts with; refuse pickles, zips and impossible lengths."""
    n = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
    if 2 <= n <= min(MAX_HEADER_BYTES, size - 8) and first == b"{":
        return n
    if len(prefix) < 8:
        raise BundleError(f"weights file {path} is {size} bytes, too short for a safetensors header; "
                          "it is truncated — re-save the bundle or retrain")
    if n > MAX_HEADER_BYTES and (prefix.startswith(PICKLE_MAGIC) or prefix[:1] in PICKLE_PROTOCOL_0):
        raise BundleError(f"{path} looks like a pickle or torch.save archive, not safetensors; rnnkit only "
                          "loads safetensors weights and never unpickles files (they can run code)")
    if n > MAX_HEADER_BYTES:
        raise BundleError(f"weights file {path} declares a {n}-byte header, more than the {MAX_HEADER_BYTES} "
                          "rnnkit accepts; the file is damaged or not an rnnkit bundle")
    if n > size - 8:
        raise BundleError(f"weights file {path} declares a {n}-byte header but holds only {size - 8} bytes "
                          "after it; the file is truncated or damaged — re-save the bundle or retrain")
    raise BundleError(f"weights file {path} is not a safetensors file (its header is not a JSON object); "
                      "re-save the bundle or retrain")


def _parse_header(raw: bytes, path: Path) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise BundleError(f"weights file {path} names tensor {twice[0]!r} twice in its header; "
                              "the file is damaged or crafted — which copy is meant is ambiguous, so it is refused")
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates, parse_int=_parse_int)
    except (UnicodeDecodeError, json.JSONDecodeError, _LongInteger, RecursionError) as exc:
        raise BundleError(f"weights file {path} has a damaged header ({type(exc).__name__}); "
                          "re-save the bundle or retrain") from None
    if not isinstance(header, dict):
        raise BundleError(f"weights file {path}: the header is not a JSON object; the file is damaged")
    return header


def _check_layout(header: dict[str, Any], data_size: int, path: Path) -> None:
    """Every tensor is float32 with a shape, and the byte ranges tile the data exactly: no gaps, no overlap."""
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise BundleError(f"weights file {path}: __metadata__ must map names to strings; the file is damaged")
    ranges = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise BundleError(f"weights file {path}: tensor {name!r} needs exactly dtype, shape and data_offsets "
                              "in the header; the file is damaged")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype != "F32":
            raise BundleError(f"weights file {path}: tensor {name!r} has dtype {dtype!r}; rnnkit bundles store "
                              "float32 (F32) weights — convert them, or re-save the bundle")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise BundleError(f"weights file {path}: tensor {name!r} has shape {shape!r}, not a list of sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
                and offsets[0] <= offsets[1]):
            raise BundleError(f"weights file {path}: tensor {name!r} has data_offsets {offsets!r}, "
                              "not [begin, end]; the file is damaged")
        needed = 4 * math.prod(shape)
        if needed != offsets[1] - offsets[0]:
            raise BundleError(f"weights file {path}: tensor {name!r} of shape {tuple(shape)} x float32 needs "
                              f"{needed} bytes, but its byte range {offsets} holds {offsets[1] - offsets[0]}; "
                              "the file is damaged")
        ranges.append((offsets[0], offsets[1], name))
    ranges.sort()
    for (_, end, first), (begin, _, second) in zip(ranges, ranges[1:]):
        if begin < end:
            raise BundleError(f"weights file {path}: the byte ranges of tensors {first!r} and {second!r} overlap; "
                              "the file is damaged or crafted")
    position = 0
    for begin, end, name in ranges:
        if begin > position:
            raise BundleError(f"weights file {path}: bytes {position}..{begin} belong to no tensor; the file is damaged")
        position = end
    if position != data_size:
        problem = ("is truncated" if position > data_size else "has bytes that belong to no tensor")
        raise BundleError(f"weights file {path} {problem}: its tensors take {position} bytes of data, the file "
                          f"holds {data_size}; re-save the bundle or retrain")


def _check_header_against(header: dict[str, Any], expected: dict[str, tuple[int, ...]], path: Path) -> None:
    found = {name: tuple(entry["shape"]) for name, entry in header.items() if name != "__metadata__"}
    _check_names_and_shapes(found, expected, path)


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _utf8(text: str, path: Path) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate cannot be stored; refuse before writing anything
        raise BundleError(f"cannot save {path}: it would hold {exc.object[exc.start:exc.end]!r}, which is not "
                          "valid Unicode text (a lone surrogate); clean the tokens or settings first") from None


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _pickle_hint(path: Path) -> str:
    """A note when the directory holds files rnnkit will not load (pickles, torch.save archives)."""
    try:
        found = sorted(p.name for p in path.parent.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    except OSError:
        return ""
    if not found:
        return ""
    return (f" (it holds {', '.join(found[:3])}: rnnkit never loads pickle or torch.save files, which can run "
            "code; export the weights to safetensors)")


def _check_tensors(tensors: dict[str, np.ndarray], config: ModelConfig, path: Path) -> None:
    _check_names_and_shapes({name: tuple(array.shape) for name, array in tensors.items()},
                            parameter_shapes(config), path)
    for name, array in tensors.items():
        if array.dtype != np.float32:
            raise BundleError(f"{path}: tensor {name} is {array.dtype}, not float32; rnnkit bundles store float32 weights")
        if not np.all(np.isfinite(array)):
            raise BundleError(f"{path}: tensor {name} holds NaN or infinite values; the weights are unusable")


def _check_names_and_shapes(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                            path: Path) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise BundleError(f"{path} does not match the model config: missing tensors {missing[:5]}, "
                          f"unexpected tensors {extra[:5]}")
    for name, shape in expected.items():
        if found[name] != shape:
            raise BundleError(f"{path}: tensor {name} has shape {found[name]}, but the config needs {shape}")


def _check_vocab(vocab: Any, config: ModelConfig, task: str, path: Path) -> None:
    """The vocabulary must fit the embedding: an encoder-decoder has "source" and "target"."""
    if not isinstance(vocab, dict):
        raise BundleError(f"{path} must hold a JSON object")
    if config.architecture == "encoder_decoder":
        parts = {"source": config.vocab_size, "target": config.target_vocab_size}
    else:
        parts = {None: config.vocab_size}
    for part, size in parts.items():
        table = vocab if part is None else vocab.get(part)
        tokens = table.get("tokens") if isinstance(table, dict) else None
        label = f"{path}" if part is None else f"{path} ({part})"
        if not isinstance(tokens, list):
            raise BundleError(f"{label} has no token list; the vocabulary is damaged")
        if len(tokens) != size:
            raise BundleError(f"{label} has {len(tokens)} tokens but the model's embedding has "
                              f"{size} rows; the vocabulary and weights do not belong together")


def _dict(document: dict, key: str, path: Path) -> dict:
    value = document.get(key) or {}
    if not isinstance(value, dict):
        raise BundleError(f"{path}: field {key!r} must be an object")
    return value

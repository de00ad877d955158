"""Save and load a model directory (a "bundle"): JSON and safetensors, never pickle.

A bundle directory holds::

    config.json         format version, task, ModelConfig, training and data settings
    vocab.json          the vocabulary (or vocabularies) the task needs
    model.safetensors   the weights, named as in `rnnkit.params`
    history.json, *.png training history and plots (written by the trainer)

Loading checks everything before returning anything: the format version, that
every file is there and parses, and that the weights match the config tensor
for tensor (names, shapes, dtype) and the vocabulary size. Each file is written
atomically, so a crash mid-save leaves the previous file intact.

This module imports numpy only (no torch), so `predict` and `serve` start fast.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit import __version__
from rnnkit.config import ModelConfig, dumps
from rnnkit.errors import BundleError, ConfigError
from rnnkit.fileio import atomic_write_text, atomic_write_with
from rnnkit.params import parameter_shapes

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "model.safetensors"
TASKS = ("sentiment", "charlm", "seq2seq", "sequence")
MAX_JSON_BYTES = 200 * 1024 * 1024
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+, zip (torch.save)


@dataclass
class Bundle:
    """A loaded bundle: everything needed to rebuild and run the model.

    Attributes:
        path: the bundle directory.
        task: what the model does (sentiment | charlm | seq2seq | sequence).
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

    Weights are checked against the config before anything is written, and
    config.json is written last, so a bundle is never left half-new.
    """
    from safetensors.numpy import save_file

    directory = Path(directory)
    arrays = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in tensors.items()}
    _check_tensors(arrays, config, Path(directory) / WEIGHTS_FILE)
    _check_vocab(vocab, config, task, Path(directory) / VOCAB_FILE)
    if directory.exists() and not directory.is_dir():
        raise BundleError(f"cannot save a bundle to {directory}: it is a file; choose a directory path")
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_with(directory / WEIGHTS_FILE, lambda tmp: save_file(arrays, str(tmp)))
    atomic_write_text(directory / VOCAB_FILE, dumps(vocab))
    document = {
        "format_version": FORMAT_VERSION,
        "rnnkit_version": __version__,
        "task": task,
        "model": config.to_dict(),
        "settings": settings or {},
        "train": train or {},
        "metrics": metrics or {},
    }
    atomic_write_text(directory / CONFIG_FILE, dumps(document))
    return directory


def load_bundle(directory: str | os.PathLike) -> Bundle:
    """Load and fully validate a bundle; raise BundleError naming the problem."""
    directory = Path(directory)
    if not directory.exists():
        raise BundleError(f"no bundle at {directory}: the directory does not exist; "
                          "pass the --out directory of a finished `rnnkit train` run")
    if not directory.is_dir():
        raise BundleError(f"{directory} is a file, but a bundle is a directory "
                          f"(with {CONFIG_FILE}, {VOCAB_FILE}, {WEIGHTS_FILE})")
    document = read_json(directory / CONFIG_FILE, "bundle config")
    version = document.get("format_version")
    if not isinstance(version, int):
        raise BundleError(f"{directory / CONFIG_FILE} has no integer format_version; it is not an rnnkit bundle")
    if version > FORMAT_VERSION:
        raise BundleError(f"{directory} uses bundle format {version}, newer than this rnnkit "
                          f"({__version__}, format {FORMAT_VERSION}); upgrade rnnkit to load it")
    if version < 1:
        raise BundleError(f"{directory} has unknown bundle format {version}")
    task = document.get("task")
    if task not in TASKS:
        raise BundleError(f"{directory / CONFIG_FILE}: unknown task {task!r} (expected one of {', '.join(TASKS)})")
    try:
        config = ModelConfig.from_dict(document.get("model"))
    except ConfigError as exc:
        raise BundleError(f"{directory / CONFIG_FILE}: {exc}") from None
    vocab = read_json(directory / VOCAB_FILE, "vocabulary")
    _check_vocab(vocab, config, task, directory / VOCAB_FILE)
    tensors = read_weights(directory / WEIGHTS_FILE)
    _check_tensors(tensors, config, directory / WEIGHTS_FILE)
    return Bundle(path=directory, task=task, config=config, vocab=vocab, tensors=tensors,
                  settings=_dict(document, "settings"), train=_dict(document, "train"),
                  metrics=_dict(document, "metrics"))


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file, or raise BundleError saying which file and why."""
    if not path.is_file():
        raise BundleError(f"{what} file {path} is missing; the bundle is incomplete — retrain or copy the whole directory")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise BundleError(f"{what} file {path} is larger than {MAX_JSON_BYTES} bytes; refusing to parse it")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BundleError(f"{what} file {path} is not UTF-8 text; the bundle is damaged") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{what} file {path} is not valid JSON ({exc.msg}, line {exc.lineno}); the bundle is damaged") from None


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """Read a safetensors file as float32 arrays; refuse pickles and damaged files."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not path.is_file():
        raise BundleError(f"weights file {path} is missing; the bundle is incomplete — retrain or copy the whole directory")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(PICKLE_MAGIC):
        raise BundleError(f"{path} looks like a pickle or torch.save archive; rnnkit only loads safetensors "
                          "weights and never unpickles files (they can run code)")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, MemoryError) as exc:
        raise BundleError(f"weights file {path} is damaged or not a safetensors file ({exc}); "
                          "re-save the bundle or retrain") from None
    bad = [name for name, array in tensors.items() if array.dtype != np.float32]
    if bad:
        raise BundleError(f"{path}: tensors {bad[:3]} are not float32; rnnkit bundles store float32 weights")
    return tensors


def _check_tensors(tensors: dict[str, np.ndarray], config: ModelConfig, path: Path) -> None:
    expected = parameter_shapes(config)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise BundleError(f"{path} does not match the model config: missing tensors {missing[:5]}, "
                          f"unexpected tensors {extra[:5]}")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise BundleError(f"{path}: tensor {name} has shape {tuple(tensors[name].shape)}, "
                              f"but the config needs {shape}")
    for name, array in tensors.items():
        if not np.all(np.isfinite(array)):
            raise BundleError(f"{path}: tensor {name} holds NaN or infinite values; the weights are unusable")


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


def _dict(document: dict, key: str) -> dict:
    value = document.get(key) or {}
    if not isinstance(value, dict):
        raise BundleError(f"bundle config field {key!r} must be an object")
    return value

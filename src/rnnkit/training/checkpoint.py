"""Resumable training state: everything needed to continue a run exactly where it stopped.

A checkpoint is one file, ``<out>/checkpoint/state.safetensors``, written
atomically (temporary file, fsync, rename), with no pickle anywhere:

    tensors    model parameters ("model.*"), best weights so far ("best.*"),
               optimizer slots ("optim.*"), engine RNG ("rng.*") and task state
               such as a carried hidden state ("carry.*"); under torchrun, the
               RNG and carried state of rank r > 0 as "rank{r}.rng.*", "rank{r}.carry.*"
    metadata   one JSON document (the safetensors header's "checkpoint" entry):
               the engine, epoch, step, batch position in the epoch, best loss,
               patience counter, history, optimizer hyper-parameters and
               schedule, numpy/python RNG

Arrays and progress live in the same file, so a kill at any moment leaves the
previous checkpoint or the new one, never a mix of the two. What goes into
the arrays and "engine_state" is the backend's business
(`rnnkit.training.backends`).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rnnkit.config import dumps, finite_json
from rnnkit.errors import TrainingError
from rnnkit.fileio import TEMP_SUFFIX, atomic_write_bytes

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.safetensors"
FORMAT = 2


@dataclass
class Progress:
    """Where a run is. `batch` is how many batches of epoch `epoch` are done (0 = epoch not started).

    `epoch_rng` is the numpy Generator state at the start of `epoch`, before its batches
    were drawn, so a resumed run draws the very same batches and skips the first `batch`.
    `world_size` is how many processes trained (torchrun); `batch` counts within
    each rank's share, so a run stopped mid-epoch resumes with as many processes.
    `run` identifies the run beyond `train_config` (the task, the model, its settings and a
    fingerprint of the data), so a resume with other settings or other data is refused.
    """

    epoch: int = 1
    batch: int = 0
    global_step: int = 0
    best_loss: float = float("inf")
    waited: int = 0
    history: list = field(default_factory=list)
    epoch_rng: dict | None = None
    epoch_sums: dict = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)
    world_size: int = 1
    run: dict = field(default_factory=dict)  # what the result depends on beside train_config: task, model, data


def save_checkpoint(out_dir: Path, engine: str, tensors: dict[str, np.ndarray], engine_state: dict,
                    progress: Progress) -> Path:
    """Write the training state atomically into out_dir/checkpoint/; refuse non-finite weights."""
    from safetensors.numpy import save

    directory = Path(out_dir) / CHECKPOINT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    if any(not np.isfinite(v).all() for k, v in arrays.items() if k.startswith("model.") and v.dtype.kind == "f"):
        raise TrainingError("refusing to checkpoint non-finite weights; the previous checkpoint is kept")
    document = {
        "format": FORMAT,
        "engine": engine,
        "progress": asdict(progress),
        "engine_state": engine_state,
        "python_rng": _python_rng_state(),
    }
    metadata = {"checkpoint": dumps(finite_json(document))}  # an unset best loss (inf) is stored as null
    # serialise in memory, then write through the OS: a full disk is an OSError, never torn state
    atomic_write_bytes(directory / STATE_FILE, save(arrays, metadata=metadata))
    return directory


def load_checkpoint(out_dir: Path, engine: str) -> tuple[Progress, dict[str, np.ndarray], dict]:
    """Read a checkpoint written by `engine`: (progress, arrays, engine_state); restores python's RNG."""
    from safetensors import SafetensorError, safe_open

    path = Path(out_dir) / CHECKPOINT_DIR / STATE_FILE
    if not path.is_file():
        raise TrainingError(f"nothing to resume: {path.parent} has no checkpoint; start without --resume")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            document = json.loads((handle.metadata() or {}).get("checkpoint", "null"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise TrainingError(f"{path} is damaged ({exc}); start again without --resume") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise TrainingError(f"{path} has checkpoint format {found!r}; this rnnkit reads {FORMAT}. "
                            "Start again without --resume")
    if document.get("engine") != engine:
        raise TrainingError(f"the checkpoint in {path.parent} was written by the {document.get('engine')} engine; "
                            f"resume with --engine {document.get('engine')}")
    try:
        python_rng = _to_tuple(document["python_rng"])
        random.setstate(python_rng)
        progress = Progress(**document["progress"])
        engine_state = dict(document["engine_state"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TrainingError(f"{path} is damaged ({type(exc).__name__}: {exc}); start again without --resume") from None
    if progress.best_loss is None:
        progress.best_loss = float("inf")
    _remove_stale_temporaries(path)
    return progress, tensors, engine_state


def _remove_stale_temporaries(path: Path) -> None:
    """A kill during a save can leave a temporary file beside the checkpoint; it is never read, so drop it."""
    for stale in path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


def generator_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def restore_generator(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


def _python_rng_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _to_tuple(state: list) -> tuple:
    version, internal, gauss = state
    return version, tuple(internal), gauss



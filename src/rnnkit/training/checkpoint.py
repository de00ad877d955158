"""Resumable training state: everything needed to continue a run exactly where it stopped.

A checkpoint is two files in ``<out>/checkpoint/``, each written atomically,
with no pickle anywhere:

    state.safetensors   model parameters ("model.*"), best weights so far ("best.*"),
                        optimizer tensors ("optim.<param index>.<name>"), torch RNG ("rng.torch")
    state.json          epoch, step, batch position in the epoch, best loss, patience counter,
                        history, optimizer hyper-parameters, LR scheduler, numpy/python RNG,
                        and the tensor file's SHA-256 (so the pair is known to belong together)

state.json is written last and names the digest of the tensor file it goes
with, so a crash between the two writes is detected, and the previous
checkpoint is never left half-replaced.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.config import dumps
from rnnkit.errors import TrainingError
from rnnkit.fileio import atomic_write_text, atomic_write_with

CHECKPOINT_DIR = "checkpoint"
FORMAT = 1


@dataclass
class Progress:
    """Where a run is. `batch` is how many batches of epoch `epoch` are done (0 = epoch not started).

    `epoch_rng` is the numpy Generator state at the start of `epoch`, before its batches
    were drawn, so a resumed run draws the very same batches and skips the first `batch`.
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


def save_checkpoint(out_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, progress: Progress, best_state: dict | None) -> Path:
    """Write the training state atomically into out_dir/checkpoint/."""
    from safetensors.torch import save_file

    directory = Path(out_dir) / CHECKPOINT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if any(not torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()):
        raise TrainingError("refusing to checkpoint non-finite weights; the previous checkpoint is kept")
    if best_state is not None:
        tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in best_state.items()})
    optim_tensors, optim_meta = _flatten_optimizer(optimizer)
    tensors.update(optim_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    weights = directory / "state.safetensors"
    atomic_write_with(weights, lambda tmp: save_file(tensors, str(tmp)))
    document = {
        "format": FORMAT,
        "progress": asdict(progress),
        "optimizer": optim_meta,
        "scheduler": scheduler.state_dict(),
        "python_rng": _python_rng_state(),
        "tensors_sha256": _sha256(weights),
    }
    atomic_write_text(directory / "state.json", dumps(_finite_json(document)))
    return directory


def load_checkpoint(out_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler) -> tuple[Progress, dict | None]:
    """Restore model, optimizer, scheduler and RNGs; return the progress and the best weights."""
    from safetensors.torch import load_file

    directory = Path(out_dir) / CHECKPOINT_DIR
    meta_path, weights = directory / "state.json", directory / "state.safetensors"
    if not meta_path.is_file() or not weights.is_file():
        raise TrainingError(f"nothing to resume: {directory} has no checkpoint; start without --resume")
    try:
        document = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{meta_path} is damaged ({exc}); start again without --resume") from None
    if document.get("format") != FORMAT:
        raise TrainingError(f"{meta_path} has checkpoint format {document.get('format')!r}; this rnnkit reads {FORMAT}")
    if document.get("tensors_sha256") != _sha256(weights):
        raise TrainingError(f"{weights} does not match {meta_path} (a save was interrupted or a file was "
                            "replaced); start again without --resume")
    tensors = load_file(str(weights))
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state)
    except RuntimeError as exc:
        raise TrainingError(f"the checkpoint in {directory} is for a different model ({str(exc)[:200]}); "
                            "resume with the same model flags, or start a new --out") from None
    optimizer.load_state_dict(_unflatten_optimizer(tensors, document["optimizer"]))
    scheduler.load_state_dict(document["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    random.setstate(_to_tuple(document["python_rng"]))
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    progress = Progress(**document["progress"])
    if progress.best_loss is None:
        progress.best_loss = float("inf")
    return progress, best


def generator_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def restore_generator(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _python_rng_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _to_tuple(state: list) -> tuple:
    version, internal, gauss = state
    return version, tuple(internal), gauss


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _finite_json(value: Any) -> Any:
    """JSON has no Infinity: store an unset best loss as null."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v) for v in value]
    return value

"""A run directory is rnnkit's, or it is refused; one training at a time in it.

Before a training writes anything into `--out`:

- a missing or empty directory becomes a run (a small `rnnkit-run.json` marks it);
- a directory that holds an rnnkit run (its marker, a bundle's config.json or a
  checkpoint) is continued with `--resume`, replaced with `--overwrite` (its
  checkpoint goes: the new run starts fresh), and otherwise refused, so the
  same command typed again never destroys an interrupted run;
- a directory with anything else in it is refused, even with `--overwrite`:
  rnnkit never replaces a file it did not write;
- a lock (`.rnnkit.lock`, `filelock`) is held for the whole training, so a
  second training into the same directory is refused at once instead of both
  reporting success while one result is lost.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Iterator

from rnnkit.errors import InputError, TrainingError
from rnnkit.fileio import atomic_write_text

RUN_FILE = "rnnkit-run.json"
LOCK_FILE = ".rnnkit.lock"
CHECKPOINT_DIR = "checkpoint"
TENSORBOARD_DIR = "tensorboard"  # event files (rnnkit.training.tensorboard)


def is_rnnkit_run(directory: Path) -> bool:
    """Whether `directory` holds a run rnnkit made: its marker, a bundle's config.json, or a checkpoint."""
    if (directory / RUN_FILE).is_file() or (directory / CHECKPOINT_DIR / "state.safetensors").is_file():
        return True
    config = directory / "config.json"
    try:
        document = json.loads(config.read_bytes()[:1 << 20]) if config.is_file() else None
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and {"format_version", "rnnkit_version"} <= set(document)


@contextlib.contextmanager
def claimed(directory: str | Path, task: str, resume: bool, overwrite: bool) -> Iterator[Path]:
    """Hold `directory` as this run's while the block runs, or raise naming the fix (see the module docstring).

    Foreign contents are refused before anything is written there; the lock is taken before the run
    already there is looked at, so a training that is still writing is named as such.
    """
    directory = Path(directory)
    if resume and overwrite:
        raise InputError("--resume continues a run and --overwrite replaces it; give one of them")
    if resume and not (directory / CHECKPOINT_DIR / "state.safetensors").is_file():
        raise TrainingError(f"nothing to resume: {directory / CHECKPOINT_DIR} has no checkpoint; start without "
                            "--resume")
    entries = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    entries = [name for name in entries if name not in (LOCK_FILE, RUN_FILE)]
    if entries and not is_rnnkit_run(directory):
        shown = ", ".join(entries[:3]) + (" ..." if len(entries) > 3 else "")
        raise InputError(f"--out {directory} holds files rnnkit did not write ({shown}); give a new or empty "
                         "directory (rnnkit never replaces files it did not write)")
    directory.mkdir(parents=True, exist_ok=True)
    with locked(directory):
        if entries and not (resume or overwrite):
            what = ("a run (its checkpoint lets --resume continue it)"
                    if (directory / CHECKPOINT_DIR / "state.safetensors").is_file() else "a run")
            raise InputError(f"--out {directory} already holds {what}; add --resume to continue it, --overwrite "
                             "to replace it, or give another --out")
        if overwrite:  # the new run starts fresh; the old bundle goes at its first save
            for folder in (CHECKPOINT_DIR, TENSORBOARD_DIR):
                if (directory / folder).is_dir():
                    shutil.rmtree(directory / folder)
        if not (directory / RUN_FILE).is_file():
            atomic_write_text(directory / RUN_FILE, json.dumps({"task": task}) + "\n")
        yield directory


@contextlib.contextmanager
def locked(directory: str | Path) -> Iterator[None]:
    """Hold the run directory's lock while the block runs; InputError at once if another training holds it."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(Path(directory) / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise InputError(f"another training is writing into {directory} right now; wait for it to finish, "
                         "or give another --out") from None
    try:
        yield
    finally:
        lock.release()

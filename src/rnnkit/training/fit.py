"""One `fit` for every task: what each task used to do by hand around the `Trainer`.

A task describes its training as a `TaskTraining`: its data (batches, and a
`setup` that may draw a validation split from the run's generator), the bundle
it writes (task name, model config, vocabulary, settings) and, per engine, its
model parts (`EngineParts`: the model, one step, validation, the weights to
save). `fit` then does the rest in one way for every task:

    engine and device checks -> torchrun set-up -> threads -> seeding
    -> task.setup(rng) -> the engine's parts -> Trainer (progress bar,
    checkpoints and --resume, early stopping, history and plots, the best
    bundle) -> the best validation metrics

so every task gets resume, early stopping, checkpoints and torchrun from the
same code, and a new task writes only its parts.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from rnnkit.bundle import save_bundle
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.errors import ConfigError
from rnnkit.optional import import_torch

ENGINES = ("torch", "numpy")


@dataclass
class EngineParts:
    """One engine's side of a task's training.

    Attributes:
        model: a torch nn.Module (already on its device) or a numpy_engine model.
        step: the Trainer's step; torch: (model, batch) -> (mean loss tensor, examples, {metric: sum});
            numpy: (model, batch, rng) -> (mean loss, examples, {metric: sum}, gradients by name).
        validate: model -> validation metrics, with "loss" (lower is better: it picks the best epoch).
        tensors: model -> its weights by bundle name (float32 numpy arrays, copies).
        settings: what this engine adds to the bundle's settings (e.g. the precision it trained in).
    """

    model: Any
    step: Callable
    validate: Callable[[Any], dict]
    tensors: Callable[[Any], dict]
    settings: dict = field(default_factory=dict)


class TaskTraining:
    """A task's training, as parts. Subclasses set the attributes and implement the methods.

    Attributes:
        task: the bundle's task name ("sentiment", "charlm", "seq2seq", ...).
        model_config: the model to build (its sizes already fitted to the data's vocabulary).
        vocab: the vocabulary as JSON (what the bundle's vocab.json holds).
        settings: the task's settings as JSON (saved in the bundle; predict reads them back).
        carry: state carried from batch to batch that checkpoints must keep (see `Carry`), or None.
        progress: whether this process shows progress (set by `fit`: under torchrun only the first does).
    """

    task: str
    model_config: ModelConfig
    vocab: Any
    settings: dict
    carry = None
    progress = False
    # settings that may change between a run and its resumption (they do not change the result)
    resumable_settings: tuple[str, ...] = ()

    def setup(self, rng: np.random.Generator) -> None:
        """Data preparation that draws from the run's seeded generator (e.g. a validation split)."""

    def batches(self, epoch: int, rng: np.random.Generator) -> Iterable:
        """One epoch of training batches (`rng` shuffles; it is the same on every rank)."""
        raise NotImplementedError

    def torch_parts(self, config: TrainConfig, device) -> EngineParts:
        raise ConfigError(f"the {self.task} task does not train on the torch engine; use --engine numpy")

    def numpy_parts(self, config: TrainConfig) -> EngineParts:
        raise ConfigError(f"the {self.task} task does not train on the numpy engine; use --engine torch")

    def describe(self, engine: str, parts: EngineParts) -> str:
        """The line printed before training: what it trains on, and the model."""
        return f"training a {self.task} model ({engine} engine): {self.model_config.describe()}"

    def fingerprint(self) -> str | None:
        """A digest of the training data (after `setup`), so a resume on other data is refused; None: unchecked."""
        return None


def fingerprint(*parts) -> str:
    """SHA-256 of arrays, strings and (nested) lists of them, in order: a data set's identity."""
    digest = hashlib.sha256()

    def add(part) -> None:
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, str):
            digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
        elif isinstance(part, (list, tuple)):
            digest.update(f"[{len(part)}".encode())
            for item in part:
                add(item)
        else:
            digest.update(repr(part).encode())

    for part in parts:
        add(part)
    return digest.hexdigest()


def fit(training: TaskTraining, config: TrainConfig, out_dir: str | Path, *, engine: str = "torch",
        resume: bool = False, overwrite: bool = False, progress: bool = True, deterministic: bool = False) -> dict:
    """Train `training`'s model with `engine`; the best model (validation loss) is saved to `out_dir`.

    `out_dir` must be new, empty or an rnnkit run (`rnnkit.training.rundir`): `resume` continues an
    interrupted run from `out_dir/checkpoint/` (it must have the same options, settings and data),
    `overwrite` replaces a run; a second training into the same directory at once is refused.
    `deterministic` (torch) asks for bit-identical reruns on one machine. Under torchrun each process
    trains on its share of every epoch's batches; only the first one writes files and prints.
    Returns the best epoch's validation metrics.
    """
    from rnnkit.training import distributed, rundir
    from rnnkit.training.trainer import Trainer, seed_everything

    device = _check_engine(engine, config, deterministic)
    group = distributed.setup(engine, config.device)
    progress = training.progress = progress and group.is_main
    with contextlib.ExitStack() as stack:
        if group.is_main:  # the others never write
            stack.enter_context(rundir.claimed(out_dir, training.task, resume, overwrite))
        rng = seed_everything(config.seed)
        training.setup(rng)
        parts = training.torch_parts(config, device) if engine == "torch" else training.numpy_parts(config)
        settings = {**training.settings, **parts.settings}
        recorded_config = {**config.to_dict(), "engine": engine}

        def save(model, metrics: dict) -> None:
            save_bundle(out_dir, training.task, training.model_config, training.vocab, parts.tensors(model),
                        settings=settings, train=recorded_config,
                        metrics={f"val_{k}": v for k, v in metrics.items()})

        if progress:
            print(training.describe(engine, parts), file=sys.stderr, flush=True)
        trainer = Trainer(parts.model, config, out_dir, save, progress=progress, carry=training.carry,
                          identity=_identity(training, settings),
                          threads=_thread_governor(engine, config, deterministic, group.active))
        trainer.fit(training.batches, parts.step, parts.validate, rng, resume=resume)
        return trainer.best_metrics()


def _identity(training: TaskTraining, settings: dict) -> dict:
    """What the result depends on beside the TrainConfig: checked when a run is resumed."""
    identity = {"task": training.task, "model": training.model_config.to_dict(),
                "settings": {k: v for k, v in settings.items() if k not in training.resumable_settings}}
    data = training.fingerprint()
    if data is not None:
        identity["data"] = data
    return identity


def _thread_governor(engine: str, config: TrainConfig, deterministic: bool, distributed: bool):
    """A ThreadGovernor for the default `--threads 0`; None for a fixed count, --deterministic or torchrun."""
    from rnnkit.training.threads import ThreadGovernor

    if config.threads or deterministic or distributed or config.device != "cpu":
        return None
    if engine == "torch":
        torch = import_torch()
        return ThreadGovernor(torch.set_num_threads, torch.get_num_threads())
    from rnnkit.numpy_engine import blas

    most = blas.get_threads()
    return ThreadGovernor(blas.set_threads, most) if most > 1 else None


def _check_engine(engine: str, config: TrainConfig, deterministic: bool):
    """The torch device for the torch engine (threads set), None for numpy; a ConfigError naming the fix."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if engine == "numpy":
        if config.device != "cpu":
            raise ConfigError("the numpy engine runs on the CPU; leave out --device or use --engine torch")
        return None
    from rnnkit.training.distributed import resolve_device

    torch = import_torch()  # before seeding, so torch is seeded too
    device = resolve_device(config.device)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    torch.set_num_threads(config.threads or torch.get_num_threads())
    return device

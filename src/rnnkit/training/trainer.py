"""The training loop: epochs of steps, validation, best-model checkpoints, early stopping.

One loop for both engines. A task hands the `Trainer` a model (a torch
nn.Module or a numpy_engine model) and three functions:

    batches(epoch, rng) -> iterable of batches for one epoch of training
    step(model, batch)  -> torch:  (mean loss tensor, examples in batch, {metric: sum over batch})
    step(model, batch, rng) -> numpy: (mean loss, examples, {metric: sum}, gradients by name)
    validate(model)     -> {"loss": .., "accuracy": .., ...} on the validation split

and a `save(model, metrics)` that writes the bundle of the best model so far.
The engine-specific part (update, snapshots, resumable state) lives in
`rnnkit.training.backends`. The loop reads straight through; each phase has a
comment.

The same loop runs in one process or in many under torchrun
(`rnnkit.training.distributed`): each rank trains on its share of every
epoch's batches through DistributedDataParallel; rank 0 alone validates,
writes the bundle, history, plots and checkpoints, and prints; the others
take its validation metrics, so every rank decides the same best epoch and
early stop.
"""

from __future__ import annotations

import dataclasses
import math
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import numpy as np

from rnnkit.config import TrainConfig
from rnnkit.errors import TrainingError
from rnnkit.fileio import remove_stale_temporaries
from rnnkit.training import distributed
from rnnkit.training.backends import NonFiniteLoss, engine_of, make_backend, make_torch_optimizer
from rnnkit.training.checkpoint import Progress, generator_state, load_checkpoint, restore_generator, save_checkpoint
from rnnkit.training.history import History, plot_history
from rnnkit.training.tensorboard import TensorBoardLog
from rnnkit.training.threads import ThreadGovernor


class TrainingInterrupted(TrainingError):
    """SIGINT/SIGTERM stopped training after a checkpoint; exit code 128 + signal number."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Carry(Protocol):
    """Task state that must survive a resume, e.g. a hidden state carried from batch to batch.

    `set({})` means "no state". Under several processes each rank keeps its own
    (checkpoints save every rank's), and it starts empty at each epoch: a rank's
    share of the batches begins in the middle of the epoch.
    """

    def get(self) -> dict[str, np.ndarray]: ...

    def set(self, arrays: dict[str, np.ndarray]) -> None: ...


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and (if it is loaded) torch; return the numpy Generator that orders the data."""
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


make_optimizer = make_torch_optimizer  # the torch optimizer of a TrainConfig (kept for benchmarks)


@dataclass
class EpochResult:
    epoch: int
    train: dict[str, float]
    val: dict[str, float]
    seconds: float
    improved: bool


class StopRequested:
    """SIGINT/SIGTERM handlers that only set a flag; the loop finishes its step, checkpoints and exits."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopRequested":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _changes(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """What differs between a checkpoint's run identity and this run's ("model.dropout 0.3 -> 0.5", ...)."""
    out = []
    for key in sorted(set(saved) & set(now)):
        if isinstance(saved[key], dict) and isinstance(now[key], dict):
            out += _changes(saved[key], now[key], f"{prefix}{key}.")
        elif saved[key] != now[key]:
            out.append("the training data (another file or other contents)" if key == "data" and not prefix
                       else f"{prefix}{key} {saved[key]!r} -> {now[key]!r}")
    return out


def _shows_bars() -> bool:
    """A terminal, or a Jupyter kernel (tqdm.auto draws a notebook widget there); not a log file or a pipe."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


class Trainer:
    """Runs `config.epochs` epochs; keeps the best validation loss; stops early after `patience`.

    Every `config.checkpoint_every` steps, at each epoch end and when SIGINT/SIGTERM
    arrives, the whole training state is checkpointed to ``out_dir/checkpoint/``;
    `fit(..., resume=True)` continues from it and ends with the same weights as
    a run that was never stopped. Under torchrun every rank runs `fit`; `save`
    and `validate` run on rank 0 only (see `rnnkit.training.distributed`).

    Args:
        model: an nn.Module (already on `config.device`) or a numpy_engine model.
        config: optimiser, clipping, epochs, patience, seed, device, checkpointing.
        out_dir: where history.json, the plots and the checkpoint go.
        save: called with (model, val metrics) whenever validation loss improves.
        progress: show a progress bar (tqdm) with the running loss.
        carry: task state saved in checkpoints and restored on resume (optional).
        identity: what else the result depends on (task, model, settings, data fingerprint); a resume
            whose identity differs from the checkpoint's is refused, naming what changed.
        threads: adapts the thread count to other processes' load after each step (`--threads 0`).
    """

    # options that may change between a run and its resumption
    RESUMABLE_CHANGES = ("epochs", "threads", "device", "patience", "checkpoint_every")

    def __init__(self, model: Any, config: TrainConfig, out_dir: str | Path,
                 save: Callable[[Any, dict], None], progress: bool = True, carry: Carry | None = None,
                 identity: dict | None = None, threads: ThreadGovernor | None = None) -> None:
        self.model, self.config, self.out_dir = model, config, Path(out_dir)
        self.threads = threads
        self.save, self.progress, self.carry = save, progress, carry
        self.identity = identity or {}
        self.group = distributed.setup(engine_of(model), config.device)
        self.backend = make_backend(model, config, config.seed, self.group)
        self.history = History()
        self.state = Progress()
        self.best_state: dict[str, np.ndarray] | None = None
        self.board: TensorBoardLog | None = None  # opened by fit

    def fit(self, batches: Callable[[int, np.random.Generator], Iterable], step: Callable,
            validate: Callable[[Any], dict], rng: np.random.Generator, resume: bool = False) -> History:
        if resume:
            self._resume()
        self.board = TensorBoardLog.open(self.out_dir) if self.group.is_main else None
        try:
            return self._fit(batches, step, validate, rng)
        finally:
            if self.board is not None:
                self.board.close()

    def _fit(self, batches: Callable, step: Callable, validate: Callable, rng: np.random.Generator) -> History:
        state, group = self.state, self.group
        with StopRequested() as stop:
            while state.epoch <= self.config.epochs:
                started = time.perf_counter()
                # 1. the epoch's batches: drawn from the rng state saved at the epoch's start
                #    (the same on every rank), then this rank's share of them
                if state.epoch_rng is None:
                    state.epoch_rng = generator_state(rng)
                restore_generator(rng, state.epoch_rng)
                epoch_batches = group.shard(list(batches(state.epoch, rng)))
                if group.active and state.batch == 0 and self.carry is not None:
                    self.carry.set({})
                # 2. one pass over them (skipping those done before a resume)
                train = self._train_epoch(epoch_batches, step, stop)
                # 3. validation (never the test split), on rank 0; every rank gets its metrics
                with self.backend.evaluating():
                    val = group.on_main(validate, self.model)
                # 4. keep the best model: save the bundle, remember its weights
                improved = val["loss"] < state.best_loss
                if improved:
                    state.best_loss, state.waited = val["loss"], 0
                    self.best_state = self.backend.snapshot()
                    group.on_main(self.save, self.model, val)
                else:
                    state.waited += 1
                # 5. record, plot, checkpoint the finished epoch
                self._record(EpochResult(state.epoch, train, val, time.perf_counter() - started, improved))
                state.epoch, state.batch, state.epoch_sums = state.epoch + 1, 0, {}
                state.epoch_rng = generator_state(rng)
                self._checkpoint()
                # 6. early stopping restores the best weights
                if self.config.patience and state.waited >= self.config.patience:
                    self._say(f"early stop: validation loss has not improved for {state.waited} epochs")
                    break
        if self.best_state is not None:
            self.backend.restore(self.best_state)
        if group.active:  # one process has nothing to compare (and a snapshot copies every weight)
            group.check_same_weights(self.backend.snapshot())
        return self.history

    def best_metrics(self) -> dict:
        """Validation metrics of the best epoch so far (also across a resume), without the "val_" prefix."""
        best = [record for record in self.history.epochs if record.get("best")]
        return {k[4:]: v for k, v in best[-1].items() if k.startswith("val_")} if best else {}

    def _train_epoch(self, batches: list, step: Callable, stop: StopRequested) -> dict[str, float]:
        from tqdm.auto import tqdm

        state, group = self.state, self.group
        self.backend.train_mode()
        sums = state.epoch_sums or {"seen": 0, "loss": 0.0}
        bar = tqdm(batches, desc=f"epoch {state.epoch}/{self.config.epochs}", unit=" batch", leave=True,
                   initial=state.batch, disable=not (self.progress and group.is_main and _shows_bars()),
                   mininterval=0.5, file=sys.stderr)
        agreed: dict = {"signal": None, "rank": None}

        def agree(loss: float) -> float:  # several processes: every rank's loss and stop signal, before the update
            loss, agreed["rank"], agreed["signal"] = group.agree_step(loss, stop.signal)
            return loss

        total_steps = self.config.epochs * len(batches)  # the schedule's length (early stopping may cut it)
        for batch_index in range(state.batch, len(batches)):
            self.backend.set_position(state.epoch, state.global_step, total_steps)
            try:
                loss, count, metrics = self.backend.step(step, batches[batch_index],
                                                         agree if group.active else None)
            except NonFiniteLoss as exc:
                where = f" on rank {agreed['rank']}" if group.active else ""
                raise TrainingError(
                    f"the loss became {exc.value}{where} at epoch {state.epoch}, batch {batch_index} "
                    f"(step {state.global_step + 1}); the best bundle and the last checkpoint are kept. "
                    "Try a lower --lr or a smaller --clip-norm.") from None
            state.global_step, state.batch = state.global_step + 1, batch_index + 1
            sums["seen"] += count
            sums["loss"] += loss * count
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            state.epoch_sums = sums
            if self.board is not None:
                self.board.step(state.global_step, sums["loss"] / max(sums["seen"], 1))
            if self.threads is not None and (changed := self.threads.tick()) is not None:
                self._say_under(bar, f"threads -> {changed}: other processes are using the cores "
                                     "(--threads N fixes the count)")
            bar.update(1)
            if batch_index % 20 == 0:
                bar.set_postfix(loss=f"{sums['loss'] / sums['seen']:.4f}", refresh=False)
            signum = agreed["signal"] if group.active else stop.signal  # all ranks stop in the same step
            if signum is not None:
                self._interrupted(signum)
            if self.config.checkpoint_every and state.global_step % self.config.checkpoint_every == 0:
                self._checkpoint()
        bar.close()
        sums = group.sum_counts(sums)  # the epoch over all ranks
        if not sums["seen"]:
            raise TrainingError("the training split produced no batches; is the data set empty?")
        return {k: v / sums["seen"] for k, v in sums.items() if k != "seen"}

    # ------------------------------------------------------------------ checkpoints

    # what each rank has of its own: its RNG streams and carried state ("rank{r}." in checkpoints, r > 0)
    PER_RANK = ("rng.", "carry.")

    def _checkpoint(self) -> None:
        group = self.group
        self.state.history = self.history.epochs
        self.state.train_config = self.config.to_dict()
        self.state.world_size = group.world_size
        self.state.run = self.identity
        tensors, engine_state = self.backend.state()
        if self.best_state is not None:
            tensors.update({f"best.{k}": v for k, v in self.best_state.items()})
        if self.carry is not None:
            tensors.update({f"carry.{k}": v for k, v in self.carry.get().items()})
        progress = self.state
        if group.active:  # every rank takes part; rank 0 writes
            others = group.all_gather({k: v for k, v in tensors.items() if k.startswith(self.PER_RANK)})
            for rank, own in enumerate(others[1:], start=1):
                tensors.update({f"rank{rank}.{k}": v for k, v in own.items()})
            # the epoch's sums so far over all ranks; on resume rank 0 starts from them, the others from 0
            progress = dataclasses.replace(self.state, epoch_sums=group.sum_counts(self.state.epoch_sums))
        group.on_main(save_checkpoint, self.out_dir, self.backend.engine, tensors, engine_state, progress)

    def _resume(self) -> None:
        group = self.group
        progress, tensors, engine_state = load_checkpoint(self.out_dir, self.backend.engine)
        saved, now = progress.train_config, self.config.to_dict()
        changed = sorted(k for k in now if k not in self.RESUMABLE_CHANGES and k in saved and saved[k] != now[k])
        changed = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in changed] + _changes(progress.run, self.identity)
        if changed:
            raise TrainingError("--resume needs the options and data of the interrupted run; changed: "
                                + ", ".join(changed))
        if progress.batch and progress.world_size != group.world_size:
            raise TrainingError(f"the checkpoint was written in the middle of epoch {progress.epoch} by "
                                f"{progress.world_size} process(es); resume it with {progress.world_size} "
                                f"(torchrun --nproc_per_node/--nnodes), not {group.world_size}")
        self._check_same_model(tensors)
        if group.is_main:  # a kill while the bundle, history or a plot was saved left its temporary file
            remove_stale_temporaries(self.out_dir)
        tensors, own_rng = self._rank_view(tensors, group.rank)
        self.backend.load_state(tensors, engine_state)
        if not own_rng and group.rank:  # a rank the interrupted run did not have: a fresh stream of its own
            self.backend.seed_rank(progress.global_step)
        self.best_state = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
        if self.carry is not None:
            self.carry.set({k[6:]: v for k, v in tensors.items() if k.startswith("carry.")})
        if group.rank:
            progress.epoch_sums = {}  # rank 0 carries the epoch's sums so far for everyone
        self.state = progress
        self.history.epochs = list(progress.history)
        self._say(f"resuming at epoch {progress.epoch}, batch {progress.batch} (step {progress.global_step})")

    @classmethod
    def _rank_view(cls, tensors: dict[str, np.ndarray], rank: int) -> tuple[dict[str, np.ndarray], bool]:
        """The checkpoint's arrays as rank `rank` saved them (its own RNG and carry); whether it had its own."""
        plain = {k: v for k, v in tensors.items() if not (k.startswith("rank") and k.split(".", 1)[0][4:].isdigit())}
        if rank == 0:
            return plain, True
        prefix = f"rank{rank}."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        shared = {k: v for k, v in plain.items() if not k.startswith(cls.PER_RANK)}
        return {**shared, **own}, bool(own)

    def _check_same_model(self, tensors: dict[str, np.ndarray]) -> None:
        expected = {k: v.shape for k, v in self.backend.snapshot().items()}
        found = {k[6:]: v.shape for k, v in tensors.items() if k.startswith("model.")}
        if expected != found:
            differ = sorted(set(expected) ^ set(found)) or [k for k in expected if expected[k] != found[k]]
            raise TrainingError(f"the checkpoint in {self.out_dir / 'checkpoint'} is for a different model "
                                f"(differs in {differ[:3]}); resume with the same model flags, or start a new --out")

    def _interrupted(self, signum: int) -> None:
        self._checkpoint()
        name = signal.Signals(signum).name
        raise TrainingInterrupted(
            f"stopped by {name} at epoch {self.state.epoch}, batch {self.state.batch} (step {self.state.global_step}); "
            f"the training state is saved in {self.out_dir / 'checkpoint'}. "
            "Resume with the same command plus --resume.", exit_code=128 + signum)

    # ------------------------------------------------------------------ reporting

    def _record(self, result: EpochResult) -> None:
        record = {"epoch": result.epoch, "seconds": round(result.seconds, 2),
                  "learning_rate": self.backend.learning_rate, "best": result.improved}
        if self.threads is not None:
            record["threads"] = self.threads.threads
        record.update({f"train_{k}": v for k, v in result.train.items()})
        record.update({f"val_{k}": v for k, v in result.val.items()})
        self.history.append(record)
        self.group.on_main(self._write_history, record, result)

    def _write_history(self, record: dict, result: EpochResult) -> None:
        self.history.save(self.out_dir)
        if self.board is not None:
            self.board.epoch(record, self.state.global_step)
        plot_history(self.history, self.out_dir)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in record.items()
                           if k.startswith(("train_", "val_")) and isinstance(v, float) and math.isfinite(v))
        self._say(f"epoch {result.epoch}: {shown}  ({result.seconds:.0f}s){'  *best*' if result.improved else ''}")

    def _say_under(self, bar, message: str) -> None:
        """A line printed above the progress bar (or plainly when there is none)."""
        if self.progress and self.group.is_main:
            if bar.disable:
                print(message, file=sys.stderr, flush=True)
            else:
                bar.write(message, file=sys.stderr)

    def _say(self, message: str) -> None:
        if self.progress and self.group.is_main:
            print(message, file=sys.stderr, flush=True)

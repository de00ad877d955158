"""The training loop: epochs of steps, validation, best-model checkpoints, early stopping.

A task hands the `Trainer` three functions:

    batches(epoch, rng) -> iterable of batches for one epoch of training
    step(model, batch)  -> (mean loss tensor, examples in batch, {metric: sum over batch})
    validate(model)     -> {"loss": .., "accuracy": .., ...} on the validation split

and a `save(model, metrics)` that writes the bundle of the best model so far.
The loop reads straight through; each phase has a comment.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from rnnkit.config import TrainConfig
from rnnkit.errors import TrainingError
from rnnkit.training.history import History, plot_history


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return the numpy Generator that orders the data."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":  # Keras' RMSprop: rho 0.9, eps 1e-7
        return torch.optim.RMSprop(params, lr=config.learning_rate, alpha=0.9, eps=1e-7,
                                   weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.learning_rate, momentum=config.momentum,
                           weight_decay=config.weight_decay)


@dataclass
class EpochResult:
    epoch: int
    train: dict[str, float]
    val: dict[str, float]
    seconds: float
    improved: bool


class Trainer:
    """Runs `config.epochs` epochs; keeps the best validation loss; stops early after `patience`.

    Args:
        model: the nn.Module (already on `config.device`).
        config: optimiser, clipping, epochs, patience, seed, device.
        out_dir: where history.json and the plots go.
        save: called with (model, val metrics) whenever validation loss improves.
        progress: show a progress bar (tqdm) with the running loss.
    """

    def __init__(self, model: torch.nn.Module, config: TrainConfig, out_dir: str | Path,
                 save: Callable[[torch.nn.Module, dict], None], progress: bool = True) -> None:
        self.model, self.config, self.out_dir = model, config, Path(out_dir)
        self.save, self.progress = save, progress
        self.optimizer = make_optimizer(model, config)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=config.lr_decay)
        self.history = History()
        self.global_step = 0

    def fit(self, batches: Callable[[int, np.random.Generator], Iterable], step: Callable,
            validate: Callable[[torch.nn.Module], dict], rng: np.random.Generator) -> History:
        best_loss, best_state, waited = math.inf, None, 0
        for epoch in range(1, self.config.epochs + 1):
            started = time.perf_counter()
            # 1. one pass over the training batches
            train = self._train_epoch(epoch, batches(epoch, rng), step)
            self.scheduler.step()
            # 2. validation (never the test split)
            self.model.eval()
            with torch.no_grad():
                val = validate(self.model)
            # 3. keep the best model: checkpoint it, remember its weights
            improved = val["loss"] < best_loss
            if improved:
                best_loss, waited = val["loss"], 0
                best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                self.save(self.model, val)
            else:
                waited += 1
            # 4. record and plot
            result = EpochResult(epoch, train, val, time.perf_counter() - started, improved)
            self._record(result)
            # 5. early stopping restores the best weights
            if self.config.patience and waited >= self.config.patience:
                self._say(f"early stop: validation loss has not improved for {waited} epochs")
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return self.history

    def _train_epoch(self, epoch: int, batches: Iterable, step: Callable) -> dict[str, float]:
        from tqdm import tqdm

        self.model.train()
        totals: dict[str, float] = {}
        seen, loss_sum = 0, 0.0
        bar = tqdm(batches, desc=f"epoch {epoch}/{self.config.epochs}", unit=" batch", leave=True,
                   disable=not (self.progress and sys.stderr.isatty()), mininterval=0.5, file=sys.stderr)
        for batch_index, batch in enumerate(bar):
            loss, count, sums = step(self.model, batch)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss.item()} at epoch {epoch}, batch {batch_index} (step {self.global_step}); "
                    "the best checkpoint so far is kept. Try a lower --lr or a smaller --clip-norm.")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.clip_norm:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
            self.optimizer.step()
            self.global_step += 1
            seen += count
            loss_sum += loss.item() * count
            for key, value in sums.items():
                totals[key] = totals.get(key, 0.0) + float(value)
            if batch_index % 20 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False)
        bar.close()
        if seen == 0:
            raise TrainingError("the training split produced no batches; is the data set empty?")
        return {"loss": loss_sum / seen, **{k: v / seen for k, v in totals.items()}}

    def _record(self, result: EpochResult) -> None:
        record = {"epoch": result.epoch, "seconds": round(result.seconds, 2),
                  "learning_rate": self.optimizer.param_groups[0]["lr"], "best": result.improved}
        record.update({f"train_{k}": v for k, v in result.train.items()})
        record.update({f"val_{k}": v for k, v in result.val.items()})
        self.history.append(record)
        self.history.save(self.out_dir)
        plot_history(self.history, self.out_dir)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in record.items()
                           if k.startswith(("train_", "val_")) and isinstance(v, float))
        self._say(f"epoch {result.epoch}: {shown}  ({result.seconds:.0f}s){'  *best*' if result.improved else ''}")

    def _say(self, message: str) -> None:
        if self.progress:
            print(message, file=sys.stderr, flush=True)

"""TensorBoard event files for a run, written when the `tensorboard` package is installed.

`tensorboard --logdir runs/` then shows every run's curves side by side: the
training loss every `STEP_EVERY` steps (the running mean of the epoch so far)
and each epoch's numbers as history.json records them (train_*, val_*,
learning_rate). Events go to OUT/tensorboard/; a resumed run appends a new
event file there and continues from the step it resumed at; --overwrite
removes the old run's events. As Hugging Face's
Trainer does, it is on whenever the package is there: without it (or without
torch, whose SummaryWriter writes the files) nothing is written and nothing
is said.
"""

from __future__ import annotations

import math
from pathlib import Path

from rnnkit.training.rundir import TENSORBOARD_DIR

STEP_EVERY = 20


class TensorBoardLog:
    """A SummaryWriter for OUT/tensorboard/, or None from `open` when it cannot be made."""

    def __init__(self, writer) -> None:
        self.writer = writer

    @classmethod
    def open(cls, out_dir: str | Path) -> "TensorBoardLog | None":
        try:
            import tensorboard  # noqa: F401 - SummaryWriter needs it; checked first so torch is only asked then
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return cls(SummaryWriter(log_dir=str(Path(out_dir) / TENSORBOARD_DIR)))

    def step(self, global_step: int, running_loss: float) -> None:
        if global_step % STEP_EVERY == 0 and math.isfinite(running_loss):
            self.writer.add_scalar("train/loss_running", running_loss, global_step)

    def epoch(self, record: dict, global_step: int) -> None:
        """One epoch's numbers (train_loss -> train/loss, val_accuracy -> val/accuracy, ...) at its last step."""
        for key, value in record.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            if key.startswith(("train_", "val_")):
                split, name = key.split("_", 1)
                self.writer.add_scalar(f"{split}/{name}", value, global_step)
            elif key in ("learning_rate", "seconds", "threads"):
                self.writer.add_scalar(f"epoch/{key}", value, global_step)
        self.writer.add_scalar("epoch/epoch", record.get("epoch", 0), global_step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

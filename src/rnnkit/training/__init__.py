"""Training with the torch engine: a task-agnostic loop plus history, plots and checkpoints."""

from rnnkit.training.history import History, plot_history
from rnnkit.training.trainer import EpochResult, Trainer, make_optimizer, seed_everything

__all__ = ["Trainer", "EpochResult", "History", "plot_history", "make_optimizer", "seed_everything"]

"""Training for both engines: one task-agnostic loop, engine backends, history, plots and checkpoints."""

from rnnkit.training.history import History, plot_history
from rnnkit.training.trainer import Carry, EpochResult, Trainer, make_optimizer, seed_everything

__all__ = ["Trainer", "Carry", "EpochResult", "History", "plot_history", "make_optimizer", "seed_everything"]

"""Per-epoch metrics, saved as history.json and drawn as loss.png / accuracy.png."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.config import dumps
from rnnkit.fileio import WRITTEN_BY, atomic_path, atomic_write_text


@dataclass
class History:
    """epochs[i] is a dict like {"epoch": 1, "train_loss": .., "val_loss": .., "val_accuracy": .., "seconds": ..}."""

    epochs: list[dict] = field(default_factory=list)

    def append(self, record: dict) -> None:
        self.epochs.append(record)

    def save(self, directory: str | Path) -> None:
        atomic_write_text(Path(directory) / "history.json", dumps({"epochs": self.epochs}))

    def series(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]


def plot_history(history: History, directory: str | Path) -> list[Path]:
    """Write loss.png and (when recorded) accuracy.png, train vs validation by epoch."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    written = []
    for metric in ("loss", "accuracy"):
        train, val = history.series(f"train_{metric}"), history.series(f"val_{metric}")
        if not train and not val:
            continue
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        if train:
            ax.plot(range(1, len(train) + 1), train, "o-", label=f"train {metric}")
        if val:
            ax.plot(range(1, len(val) + 1), val, "s-", label=f"validation {metric}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} by epoch")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        target = Path(directory) / f"{metric}.png"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": WRITTEN_BY})
        plt.close(fig)
        written.append(target)
    return written

"""Per-epoch metrics, saved as history.json and history.csv and drawn as loss.png / accuracy.png.

The plots are drawn on their own Agg canvas: a notebook's matplotlib backend is never switched.
"""

from __future__ import annotations

import csv
import io
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
        """history.json, and history.csv: one row per epoch, one column per number recorded."""
        atomic_write_text(Path(directory) / "history.json", dumps({"epochs": self.epochs}))
        atomic_write_text(Path(directory) / "history.csv", self.to_csv())

    def to_csv(self) -> str:
        columns = list(dict.fromkeys(k for e in self.epochs for k, v in e.items()
                                     if isinstance(v, (int, float, bool, str))))
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.epochs)
        return out.getvalue()

    def series(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]


def plot_history(history: History, directory: str | Path) -> list[Path]:
    """Write loss.png and (when recorded) accuracy.png, train vs validation by epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written = []
    for metric in ("loss", "accuracy"):
        train, val = history.series(f"train_{metric}"), history.series(f"val_{metric}")
        if not train and not val:
            continue
        fig = Figure(figsize=(6, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
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
        written.append(target)
    return written

"""What the lab's experiments write: figures drawn on their own Agg canvas (a notebook's matplotlib backend
is never switched) and JSON, each saved atomically; PNGs carry rnnkit's name in their Software field, as
`rnnkit.training.history`'s do."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rnnkit.config import finite_json
from rnnkit.fileio import WRITTEN_BY, atomic_path, atomic_write_text

COLORS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}


def figure(rows: int, columns: int, width: float, height: float):
    """A matplotlib Figure on an Agg canvas and its axes, as a flat list."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False)
    return fig, list(axes.ravel())


def save_png(fig, target: str | Path) -> None:
    """Write `fig` as a PNG at `target`, atomically."""
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": WRITTEN_BY})


def save_json(result: dict, target: str | Path) -> None:
    """Write `result` as JSON at `target`, atomically; NaN and infinities (a diverged run) become null."""
    text = json.dumps(finite_json(result), indent=1)
    text = re.sub(r"\[\s+([-+.,\deEnul\s]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    atomic_write_text(target, text + "\n")  # lists of numbers on one line each

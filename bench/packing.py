"""Padded-with-masks vs packed sequences on this machine (why rnnkit pads by default on CPU).

    python bench/packing.py

One forward + backward of StackedRecurrent over length-bucketed batches drawn
from a realistic length distribution (IMDB-like: log-normal, median ~175,
cut at 500), batch 64, 128 -> 128, interleaved repeats; prints the median time
of each mode and their ratio, and writes bench/results/packing.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from rnnkit.torch_engine import StackedRecurrent

RESULTS = Path(__file__).resolve().parent / "results" / "packing.json"


def batch(rng: np.random.Generator, n: int = 64):
    lengths = np.clip(rng.lognormal(np.log(175), 0.6, size=n), 10, 500).astype(np.int64)
    lengths.sort()
    window = lengths[lengths >= np.median(lengths)]  # one bucket: similar lengths
    lengths = rng.choice(window, size=n)
    return torch.randn(n, int(lengths.max()), 128), torch.from_numpy(lengths)


def time_mode(module, x, lengths, packed: bool) -> float:
    started = time.perf_counter()
    out, _ = module(x, lengths, packed=packed)
    out.sum().backward()
    return time.perf_counter() - started


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    results = {}
    for cell, bidirectional in (("lstm", False), ("lstm", True), ("gru", True)):
        torch.manual_seed(0)
        module = StackedRecurrent(cell, 128, 128, bidirectional=bidirectional)
        x, lengths = batch(rng)
        time_mode(module, x, lengths, False), time_mode(module, x, lengths, True)  # warm-up
        padded, packed = [], []
        for _ in range(5):
            padded.append(time_mode(module, x, lengths, False))
            packed.append(time_mode(module, x, lengths, True))
        name = f"{'bi' if bidirectional else ''}{cell}"
        results[name] = {"padded_ms": round(1000 * statistics.median(padded), 1),
                         "packed_ms": round(1000 * statistics.median(packed), 1),
                         "packed_over_padded": round(statistics.median(b / a for a, b in zip(padded, packed)), 2),
                         "steps": int(lengths.max())}
        print(f"{name:8s} padded {results[name]['padded_ms']:8.1f} ms   packed {results[name]['packed_ms']:8.1f} ms"
              f"   packed/padded {results[name]['packed_over_padded']:.2f}x")
    results.update({"command": "python bench/packing.py", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"})
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""What the bench scripts that drive the command line share: running `rnnkit`, and what a result records of
the machine and the commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rnnkit(*args: str, env: dict | None = None) -> tuple[float, str]:
    """Run `rnnkit ARGS` as a process; (minutes, stdout). Its stderr (progress) passes through."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", *args], stdout=subprocess.PIPE, text=True,
                          env=env, check=True)
    return round((time.perf_counter() - started) / 60, 2), proc.stdout


def test_accuracy(bundle: Path, data: Path) -> float:
    """Accuracy on aclImdb's 25,000 test reviews (`rnnkit evaluate`, torch engine for speed)."""
    import json

    _, out = rnnkit("evaluate", str(bundle), "--data", str(data), "--split", "test", "--json", "--quiet",
                    "--engine", "torch")
    return round(json.loads(out.strip().splitlines()[-1])["accuracy"], 4)


SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_flags() -> list[str]:
    """The CPU's vector-instruction flags that decide the kernels (bf16 needs avx512_bf16 or amx_bf16)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return []
    return [flag for flag in SIMD_FLAGS if flag in flags]


def machine() -> dict:
    """The CPU's name and vector flags, the cores, the platform, and Python's, numpy's and torch's versions."""
    import numpy as np
    import torch

    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": cpu or platform.processor(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "platform": platform.platform()}


def git_commit() -> str | None:
    """The checkout's commit; None without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:  # no git on this machine
        return None
    return head or None


def write_results(path: str | Path, results: dict) -> None:
    """`results` as indented JSON at `path` (folders made as needed), and a line saying where."""
    import json

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")

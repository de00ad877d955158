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


def machine() -> dict:
    """The CPU's name, the cores, torch's and Python's versions."""
    import torch

    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version()}


def git_commit() -> str | None:
    """The checkout's commit; None without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:  # no git on this machine
        return None
    return head or None

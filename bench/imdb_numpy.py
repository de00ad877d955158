"""IMDB on the from-scratch numpy engine: the default model trained for real, against torch, one script.

    python bench/imdb_numpy.py --data ../shared/data/aclImdb_v1.tar.gz             # 2 epochs each (~10 min)
    python bench/imdb_numpy.py --data ... --epochs 1 --out /tmp/quick.json

Runs `rnnkit train imdb --epochs N` (every other flag at its default: bi-GRU
128, mean_max pooling, 30,000 words) once with `--engine torch` and once with
`--engine numpy`, one after the other from the same warm tokenizer cache, then
`rnnkit evaluate --engine numpy` on the 25,000 test reviews for both bundles.
Reports test accuracy, whole-command minutes and the median epoch time (from
each run's history.json) and their ratio numpy / torch. The two runs are not
interleaved (each takes minutes): read the ratio with the load average the JSON
records. Writes bench/results/imdb_numpy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "imdb_numpy.json"


def rnnkit(*args: str, env: dict) -> str:
    return subprocess.run([sys.executable, "-m", "rnnkit.cli", *args], check=True, env=env, capture_output=True,
                          text=True).stdout


def train_and_evaluate(engine: str, data: str, epochs: int, out: Path, env: dict) -> dict:
    started = time.perf_counter()
    rnnkit("train", "imdb", "--data", data, "--out", str(out), "--engine", engine, "--epochs", str(epochs),
           "--quiet", env=env)
    minutes = (time.perf_counter() - started) / 60
    history = json.loads((out / "history.json").read_text())["epochs"]
    test = json.loads(rnnkit("evaluate", str(out), "--data", data, "--engine", "numpy", "--json", "--quiet",
                             env=env).strip().splitlines()[-1])
    return {"test_accuracy": round(test["accuracy"], 4), "test_loss": round(test["loss"], 4),
            "train_minutes": round(minutes, 2),
            "epoch_seconds": [round(e["seconds"], 1) for e in history],
            "val_accuracy": [round(e["val_accuracy"], 4) for e in history]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an unpacked aclImdb/ folder")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each run (default %(default)s)")
    parser.add_argument("--out", default=str(RESULTS), help="results JSON (default %(default)s)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="rnnkit-bench-imdb-numpy-"))
    env = {**os.environ, "RNNKIT_CACHE": str(work / "cache")}
    load_before = os.getloadavg()
    runs = {}
    for engine in ("torch", "numpy"):
        runs[engine] = train_and_evaluate(engine, args.data, args.epochs, work / engine, env)
        print(engine, runs[engine], flush=True)
    ratio = statistics.median(runs["numpy"]["epoch_seconds"]) / statistics.median(runs["torch"]["epoch_seconds"])
    result = {
        "test_accuracy_numpy": runs["numpy"]["test_accuracy"], "test_accuracy_torch": runs["torch"]["test_accuracy"],
        "epochs": args.epochs, "epoch_time_ratio_numpy_vs_torch": round(ratio, 3), "runs": runs,
        "note": "the first run also fills the tokenizer cache (its first epoch is not affected: "
                "tokenizing happens before training)",
        "command": "python " + " ".join(["bench/imdb_numpy.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "load_average_before_after": [round(x, 2) for x in (*load_before, *os.getloadavg())],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"numpy engine: {result['test_accuracy_numpy']:.4f} test accuracy after {args.epochs} epochs "
          f"(torch {result['test_accuracy_torch']:.4f}); epoch time numpy/torch {ratio:.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

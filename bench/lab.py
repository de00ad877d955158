"""The lab's measured lessons; stage `conditional_generation`: does a review written for a label read as that label?

    python bench/lab.py --data ../shared/data/aclImdb_v1.tar.gz --classifier runs/imdb            # ~25 min, 2 cores
    python bench/lab.py --data ... --classifier runs/imdb --generator runs/review-gen             # judge only
    python bench/lab.py --data ... --classifier runs/imdb --quick                                 # minutes: the script works

conditional_generation
    1. `rnnkit train generate-review --data DATA` (IMDB's 25,000 labelled training reviews; test/ is never
       read) with its defaults (sized for about 20 minutes on 2 CPU cores; the label fed at every step,
       --condition every-step) and --train-options, unless --generator names a bundle already trained;
    2. `rnnkit lab judge GENERATOR CLASSIFIER --per-label 200`: 200 reviews written for each label, each
       labelled by the classifier bundle --classifier names (`rnnkit train imdb`, or any classify or
       sentiment bundle with the labels negative and positive);
    3. records conditional_generation_agreement (the share labelled as asked; a generator that ignored its
       label scores about 0.5) and its value per label, the generator's validation perplexity and how it is
       conditioned (initial or every_step), minutes, the commands and a few of the reviews.

Results are merged into bench/results/lab.json (other keys are kept). --quick trains a small model on a
balanced sample of --sample training reviews and judges --per-label 20 reviews; it writes to a temporary
file (printed), never to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "lab.json"
STAGES = ("conditional_generation",)
QUICK_TRAIN = "--epochs 1 --hidden 64 --embedding-dim 32 --vocab-size 5000 --max-len 60"


def rnnkit(*args: str) -> tuple[float, str]:
    """Run `rnnkit ARGS` as a process; (minutes, stdout). Its stderr (progress) passes through."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", *args], stdout=subprocess.PIPE, text=True, check=True)
    return round((time.perf_counter() - started) / 60, 2), proc.stdout


def sample_csv(data: Path, count: int, target: Path, seed: int = 0) -> Path:
    """A CSV of `count` of aclImdb's training reviews (half each label, seeded) with their labels."""
    import csv

    from rnnkit.tasks.classify.imdb import imdb_split

    train = imdb_split(data, "train")
    rng, rows = random.Random(seed), []
    for label in ("negative", "positive"):
        pool = [i for i, lab in enumerate(train.labels) if lab == label]
        rows += [(train.texts[i], label) for i in rng.sample(pool, count // 2)]
    with open(target, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return target


def conditional_generation(args, work: Path) -> dict:
    generator, result = args.generator, {}
    if generator is None:
        generator = work / "review-gen"
        data = sample_csv(Path(args.data), args.sample, work / "sample.csv") if args.quick else Path(args.data)
        command = ["train", "generate-review", "--data", str(data), "--out", str(generator), "--overwrite",
                   *shlex.split(args.train_options)]
        minutes, out = rnnkit(*command)
        print(out, end="")
        result.update({"conditional_generation_train_minutes": minutes,
                       "conditional_generation_train_command": "rnnkit " + shlex.join(command)})
    judge = ["lab", "judge", str(generator), str(args.classifier), "--per-label", str(args.per_label), "--json",
             "--seed", "0"]
    minutes, out = rnnkit(*judge)
    judged = json.loads(out.strip().splitlines()[-1])
    from rnnkit.bundle import load_bundle

    bundle = load_bundle(generator)
    metrics = bundle.metrics
    result.update({
        "conditional_generation_agreement": round(judged["agreement"], 4),
        **{f"conditional_generation_agreement_{label}": round(r["agreement"], 4)
           for label, r in judged["per_label"].items()},
        "conditional_generation_labelled_as": {label: r["labelled_as"] for label, r in judged["per_label"].items()},
        "conditional_generation_texts": judged["texts"],
        "conditional_generation_mean_words": {label: round(r["mean_words"], 1) for label, r in judged["per_label"].items()},
        "conditional_generation_val_perplexity": round(metrics["val_perplexity"], 2) if "val_perplexity" in metrics else None,
        "conditional_generation_condition": bundle.config.condition,
        "conditional_generation_judge_minutes": minutes,
        "conditional_generation_judge_command": "rnnkit " + shlex.join(judge),
        "conditional_generation_judge_settings": judged["settings"],
        "conditional_generation_examples": {label: r["examples"] for label, r in judged["per_label"].items()},
        "conditional_generation_classifier": str(args.classifier),
    })
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an aclImdb/ folder")
    parser.add_argument("--classifier", required=True, type=Path,
                        help="a classifier bundle with the labels negative and positive (e.g. rnnkit train imdb)")
    parser.add_argument("--generator", type=Path, help="a generate-review bundle to judge instead of training one")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, from {', '.join(STAGES)}")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "lab-bench",
                        help="where the bundles go (default %(default)s)")
    parser.add_argument("--train-options", default="", help="more options of `rnnkit train generate-review`")
    parser.add_argument("--per-label", type=int, default=200, help="reviews judged per label (default %(default)s)")
    parser.add_argument("--sample", type=int, default=2000, help="--quick: training reviews sampled (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help="minutes: a small model on --sample reviews, 20 judged "
                        "per label, results to a temporary file (checks the script)")
    args = parser.parse_args()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if not stages or set(stages) - set(STAGES):
        parser.error(f"--stages takes a comma-separated list from {', '.join(STAGES)}; got {args.stages!r}")
    if not args.classifier.is_dir():
        parser.error(f"--classifier {args.classifier} is not a bundle directory; train one with rnnkit train imdb")
    if args.quick:
        args.train_options = f"{QUICK_TRAIN} {args.train_options}".strip()
        args.per_label = min(args.per_label, 20)
    work = args.work if not args.quick else Path(tempfile.mkdtemp(prefix="lab-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    out_file = RESULTS if not args.quick else work / "lab.json"
    results = json.loads(out_file.read_text()) if out_file.exists() else {}
    for stage in stages:
        results.update({stage: {"command": "python bench/lab.py " + shlex.join(sys.argv[1:]),
                                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                "machine": _machine(), "commit": _git_commit(), "quick": args.quick}})
        results.update(globals()[stage](args, work))
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")  # after each stage
        print(f"{stage}: agreement {results['conditional_generation_agreement']:.1%} -> {out_file}")
    return 0


def _machine() -> dict:
    import torch

    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version()}


def _git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:  # no git on this machine
        return None
    return head or None


if __name__ == "__main__":
    sys.exit(main())

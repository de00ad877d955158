"""The lab's measured lessons: gradients through time, the adding problem, the negation probe, text from a label.

    python bench/lab.py --data ../shared/data/aclImdb_v1.tar.gz --classifier runs/imdb            # ~40 min, 2 cores
    python bench/lab.py --data ... --classifier runs/imdb --stages gradients,adding               # some stages
    python bench/lab.py --data ... --classifier runs/imdb --generator runs/review-gen             # judge only
    python bench/lab.py --data ... --classifier runs/imdb --quick                                 # minutes: the script works

gradients
    `rnnkit.lab.gradients` at T = 100 (numpy engine): gradient_ratio_t100, ||dL/dh_1|| / ||dL/dh_T|| per cell at
    initialisation and after training on the adding problem, and the clipping comparison's final MSEs.
adding
    `rnnkit.lab.adding` at T = 50, 100, 200, rnn/lstm/gru with the same budget (4,000 Adam steps at most):
    adding_mse (final test MSE; always answering 1 scores 0.167) and adding_steps_to_0_01.
negation
    `rnnkit lab negation` on a bag of words (`rnnkit train imdb --model bow`, trained here unless --bow) and on
    the recurrent --classifier: negation_accuracy_bow, negation_accuracy_rnn (and each one's test accuracy).

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
import random
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import git_commit, machine, rnnkit, test_accuracy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "lab.json"
STAGES = ("gradients", "adding", "negation", "conditional_generation")
QUICK_TRAIN = "--epochs 1 --hidden 64 --embedding-dim 32 --vocab-size 5000 --max-len 60"



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


def gradients(args, work: Path) -> dict:
    """||dL/dh_1|| / ||dL/dh_T|| at T = 100 per cell (numpy engine), at initialisation and after training on the
    adding problem; the loss reads h_T alone, so h_T is distance 0 and h_1 distance T - 1."""
    from rnnkit.lab.gradients import GradientSettings, run

    settings = GradientSettings(length=100, train_steps=300 if args.quick else 3000)
    started = time.perf_counter()
    result = run(settings, progress=print)
    curves = result["relative_norm"]
    ratio = {cell: {when: _ratio(curves[f"{cell} {key}"]) for when, key in (("init", "at init"), ("trained", "trained"))
                    if f"{cell} {key}" in curves} for cell in ("rnn", "lstm", "gru")}
    return {"gradient_ratio_t100": ratio, "gradient_trained": result["trained"],
            "gradient_clipping_final_mse": {name: r["final_test_mse"] for name, r in result["clipping"].items()},
            "gradients_minutes": round((time.perf_counter() - started) / 60, 2),
            "gradients_settings": result["settings"]}


def _ratio(relative: list[float]) -> float:
    """||dL/dh_1|| / ||dL/dh_T||: the curve is indexed by distance d = T - t."""
    return float(f"{relative[-1] / relative[0]:.3g}")


def adding(args, work: Path) -> dict:
    """The adding problem at T = 50, 100, 200, every cell with the same budget: test MSE, and the steps it took to
    reach MSE < 0.01 (None: never within the budget)."""
    from rnnkit.lab.adding import AddingSettings, run

    settings = AddingSettings(steps=400 if args.quick else 4000, lengths=(50,) if args.quick else (50, 100, 200))
    started = time.perf_counter()
    result = run(settings, progress=lambda r: print(f"adding: {r['cell']} T={r['length']}: test MSE "
                                                    f"{r['final_test_mse']:.4f} after {r['steps'][-1]} steps"))
    mse, steps = {}, {}
    for r in result["runs"]:
        key = f"T{r['length']}"
        mse.setdefault(r["cell"], {})[key] = round(r["final_test_mse"], 5)
        below = [step for step, value in zip(r["steps"], r["test_mse"]) if value < 0.01]
        steps.setdefault(r["cell"], {})[key] = below[0] if below else None
    return {"adding_mse": mse, "adding_steps_to_0_01": steps, "adding_baseline_mse": result["baseline_mse"],
            "adding_minutes": round((time.perf_counter() - started) / 60, 2), "adding_settings": result["settings"]}


def negation(args, work: Path) -> dict:
    """The negation probe: a bag of words (`train imdb --model bow`, trained here unless --bow names one) against
    the recurrent classifier --classifier names; the accuracy of each on the probes."""
    from rnnkit.lab.negation import score
    from rnnkit.tasks import load_predictor

    bow, result = args.bow, {}
    if bow is None:
        bow = work / "bow"
        command = ["train", "imdb", "--data", str(args.data), "--model", "bow", "--out", str(bow), "--overwrite",
                   "--quiet", *(["--epochs", "1"] if args.quick else [])]
        minutes, _ = rnnkit(*command)
        result.update({"negation_bow_train_minutes": minutes, "negation_bow_train_command": "rnnkit " + shlex.join(command)})
    for name, path in (("bow", bow), ("rnn", args.classifier)):
        r = score(load_predictor(path), name)
        result[f"negation_accuracy_{name}"] = round(r["probes"], 4)
        result[f"negation_{name}"] = {k: r[k] for k in ("model", "negated", "plain", "negation_pairs_right", "order",
                                                        "order_pairs_right", "unknown_tokens", "unanswered")}
        result[f"negation_{name}"]["test_accuracy"] = None if args.quick else test_accuracy(path, args.data)
    return result



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
    parser.add_argument("--bow", type=Path, help="negation: a `train imdb --model bow` bundle instead of training one")
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
                                "machine": machine(), "commit": git_commit(), "quick": args.quick}})
        results.update(globals()[stage](args, work))
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")  # after each stage
        print(f"{stage} -> {out_file}")
    return 0




if __name__ == "__main__":
    sys.exit(main())

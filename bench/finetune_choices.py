"""Which fine-tuning choices help: one pretrained word LM fine-tuned on IMDB several ways, side by side.

    python bench/finetune_choices.py --data ../shared/data/aclImdb_v1.tar.gz --lm runs/pretrain-bench/lm
    python bench/finetune_choices.py --data ... --pretrain-options "--epochs 2" --extra "--device cuda" --tag gpu

Each variant is `rnnkit train imdb --init LM` with its options (and --extra), scored on aclImdb's 25,000
test reviews (read only to score; `rnnkit evaluate`); the LM is trained first with `rnnkit pretrain`
(--pretrain-options) unless --lm names one. The variants (ULMFiT's choices, Howard & Ruder 2018, one at a time):

  plain           the classify defaults from the pretrained encoder: Adam, constant lr 2e-3
  schedule        + a warm-up over 10% of the steps, then linear decay to 0 (--lr-schedule linear --warmup 0.1)
  discriminative  + each layer below the head at the rate of the one above / 2.6 (--layer-lr-decay 2.6)
  ulmfit          + gradual unfreezing: the head alone in epoch 1, then one more layer per epoch
  scratch         the same architecture (the LM's encoder shape) without --init: what pretraining adds

Writes bench/results/finetune_choices.json (results under --tag; other tags are kept) after each variant.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import git_commit, machine, rnnkit, test_accuracy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "finetune_choices.json"
SCHEDULE = "--lr-schedule linear --warmup 0.1"
VARIANTS = {
    "plain": "",
    "schedule": SCHEDULE,
    "discriminative": f"{SCHEDULE} --layer-lr-decay 2.6",
    "ulmfit": f"{SCHEDULE} --layer-lr-decay 2.6 --gradual-unfreeze",
    "scratch": None,  # the encoder's shape, no --init
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an aclImdb/ folder")
    parser.add_argument("--lm", type=Path, help="a word LM bundle (rnnkit pretrain); default: train one")
    parser.add_argument("--pretrain-options", default="--epochs 2", help="when training the LM (default %(default)r)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from %(default)s")
    parser.add_argument("--extra", default="", help="options added to every fine-tuning run (e.g. --device cuda)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "finetune-choices")
    parser.add_argument("--tag", default="cpu", help="the key the results go under (default %(default)s)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or set(variants) - set(VARIANTS):
        parser.error(f"--variants takes a comma-separated list from {', '.join(VARIANTS)}")
    data, work = Path(args.data), args.work
    work.mkdir(parents=True, exist_ok=True)
    everything = json.loads(args.results.read_text()) if args.results.exists() else {}
    results = everything.setdefault(args.tag, {})
    results.update({"command": "python bench/finetune_choices.py " + shlex.join(sys.argv[1:]),
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
                    "commit": git_commit(), "extra": args.extra, "gpu": _gpu()})

    def record(key: str, value) -> None:
        from rnnkit.fileio import atomic_write_text

        results[key] = value
        args.results.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.results, json.dumps(everything, indent=2) + "\n")
        print(json.dumps({key: value}), flush=True)

    lm = args.lm
    if lm is None:
        lm = work / "lm"
        minutes, _ = rnnkit("pretrain", "--text", str(data), "--out", str(lm), "--overwrite", "--sample-every", "0",
                            *shlex.split(args.pretrain_options), *shlex.split(args.extra))
        metrics = json.loads((lm / "config.json").read_text()).get("metrics", {})
        record("lm", {"options": args.pretrain_options, "minutes": minutes,
                      "val_perplexity": metrics.get("val_perplexity")})
    encoder = json.loads((lm / "config.json").read_text())["model"]
    for name in variants:
        options = VARIANTS[name]
        out = work / name
        if options is None:
            shape = ["--cell", encoder["cell"], "--layers", str(encoder["num_layers"]), "--hidden",
                     str(encoder["hidden_size"]), "--embedding-dim", str(encoder["embedding_dim"]),
                     "--no-bidirectional"]
            argv = ["train", "imdb", "--data", str(data), "--out", str(out), "--overwrite", *shape]
        else:
            argv = ["train", "imdb", "--data", str(data), "--init", str(lm), "--out", str(out), "--overwrite",
                    *shlex.split(options)]
        minutes, _ = rnnkit(*argv, *shlex.split(args.extra), "--quiet")
        epochs = json.loads((out / "history.json").read_text()).get("epochs", [])
        best = max((e for e in epochs if e.get("best")), key=lambda e: e["epoch"], default={})
        record(name, {"options": options if options is not None else "no --init, the encoder's shape",
                      "test_accuracy": test_accuracy(out, data), "minutes": minutes, "epochs": len(epochs),
                      "best_epoch": best.get("epoch"), "val_accuracy": best.get("val_accuracy")})
    print(f"written to {args.results}")
    return 0


def _gpu() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


if __name__ == "__main__":
    raise SystemExit(main())

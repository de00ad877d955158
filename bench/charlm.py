"""Character-level LM benchmark on tiny-shakespeare: validation loss in a time budget, generation speed.

    python bench/charlm.py                     # full run: 30 min budget, writes bench/results/charlm.json
    python bench/charlm.py --quick             # check the script (~1.5 min, small model, nothing written)

1. Training: `rnnkit.tasks.charlm.train` (the code behind `rnnkit train
   charlm`) on ../shared/data/tinyshakespeare.txt (first 90% trains, last 10%
   validates), with the model and settings below (the defaults of `rnnkit
   train charlm` unless flags change them). Every epoch ends with a
   validation pass; when the wall-clock budget (--minutes) runs out, SIGINT
   stops the run the way a user's Ctrl-C does (the step finishes, a
   checkpoint is written) and the best epoch's bundle is what counts.
   Target: validation loss <= 1.40 nats/char within 30 minutes, in fp32 and in bf16.
   With a cosine schedule, give --epochs that fit the budget (20 fp32 epochs, 30 bf16
   ones on a 2-core AMD EPYC).
2. The saved bundle is scored again on the validation text with the numpy
   engine (the number reported), and generates --gen-chars characters at batch
   1 on each engine (one thread each) for chars/s; both engines must produce
   the same text for the same seed.

Results (with the machine, the command and the reference numbers of
karpathy/char-rnn and karpathy/nanoGPT from their READMEs) go to
bench/results/charlm.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.text import read_text, split_text
from rnnkit.fileio import atomic_write_text
from rnnkit.tasks import charlm, load_predictor
from rnnkit.training.trainer import TrainingInterrupted

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "charlm.json"
sys.path.insert(0, str(ROOT / "bench"))
from common import machine  # noqa: E402
DEFAULT_TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
TARGET_NATS = 1.40  # issue 16's target (it was 1.45 before)

REFERENCES = {
    "nanoGPT_shakespeare_char_gpu": {
        "val_loss_nats": 1.4697,
        "setting": "config/train_shakespeare_char.py: 6-layer Transformer, 6 heads, 384 channels, context 256, "
                   "batch 64, dropout 0.2, 5000 iterations; 'On one A100 GPU this training run takes about 3 "
                   "minutes and the best validation loss is 1.4697'",
        "source": "https://github.com/karpathy/nanoGPT README.md (quick start, 'I have a GPU')",
    },
    "nanoGPT_shakespeare_char_cpu": {
        "val_loss_nats": 1.88,
        "setting": "--device=cpu --compile=False --eval_iters=20 --block_size=64 --batch_size=12 --n_layer=4 "
                   "--n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0; 'runs in "
                   "about ~3 minutes, but gets us a loss of only 1.88'",
        "source": "https://github.com/karpathy/nanoGPT README.md (quick start, 'I only have a macbook')",
    },
    "char_rnn": {
        "val_loss_nats": None,
        "setting": "The README reports no tiny-shakespeare result. Defaults: 2-layer LSTM, rnn_size 128 (~150K "
                   "parameters); its bigger example is -rnn_size 512 -num_layers 2 -dropout 0.5; train/val "
                   "split 95%/5% of batch x seq_length chunks. Example checkpoint names in the README carry "
                   "validation losses 2.0681 (epoch 0.95) and 1.3950 (epoch 30), without their settings.",
        "source": "https://github.com/karpathy/char-rnn README.md (Checkpoints; Training with GPU but sampling on CPU)",
    },
}


def parse_args(argv=None) -> argparse.Namespace:
    d = charlm.DEFAULTS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--text", default=os.environ.get("RNNKIT_SHAKESPEARE", str(DEFAULT_TEXT)))
    p.add_argument("--out", default=str(ROOT / "runs" / "bench-charlm"), help="bundle directory (replaced)")
    p.add_argument("--minutes", type=float, default=30.0, help="wall-clock training budget")
    p.add_argument("--quick", action="store_true", help="a ~1.5 minute check of this script; writes no results")
    p.add_argument("--results", help=f"where to write the JSON (default {RESULTS.relative_to(ROOT)}; "
                                     "--quick writes nothing unless given)")
    p.add_argument("--cell", default=d["cell"])
    p.add_argument("--layers", type=int, default=d["layers"])
    p.add_argument("--hidden", type=int, default=d["hidden"])
    p.add_argument("--embedding-dim", type=int, default=d["embedding_dim"])
    p.add_argument("--dropout", type=float, default=d["dropout"])
    p.add_argument("--seq-len", type=int, default=d["seq_len"])
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--lr", type=float, default=d["lr"])
    p.add_argument("--lr-decay", type=float, default=d["lr_decay"])
    p.add_argument("--lr-schedule", default=d["lr_schedule"], choices=("exponential", "linear", "cosine"))
    p.add_argument("--warmup", type=float, default=d["warmup"], help="share of the steps with a rising learning rate")
    p.add_argument("--weight-decay", type=float, default=d["weight_decay"])
    p.add_argument("--epochs", type=int, default=d["epochs"])
    p.add_argument("--patience", type=int, default=d["patience"])
    p.add_argument("--precision", default="auto", choices=charlm.PRECISIONS)
    p.add_argument("--threads", type=int, default=0, help="torch training threads (0 = every core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gen-chars", type=int, default=2000, help="characters generated per engine for chars/s")
    p.add_argument("--progress", action="store_true", help="show the progress bar and samples")
    p.add_argument("--generation-only", action="store_true",
                   help="no training: measure generation again on the bundle at --out and update those fields")
    args = p.parse_args(argv)
    if args.quick:  # a small model on the first 200k characters, one minute
        args.minutes, args.hidden, args.layers, args.embedding_dim = min(args.minutes, 1.0), 128, 1, 32
        args.epochs, args.gen_chars, args.batch_size, args.seq_len = 2, 300, 32, 64
    return args


def train_command(args) -> str:
    return (f"rnnkit train charlm --text {args.text} --out {args.out} --cell {args.cell} --layers {args.layers} "
            f"--hidden {args.hidden} --embedding-dim {args.embedding_dim} --dropout {args.dropout} "
            f"--seq-len {args.seq_len} --batch-size {args.batch_size} --lr {args.lr} --lr-decay {args.lr_decay} "
            f"--lr-schedule {args.lr_schedule} --warmup {args.warmup} --weight-decay {args.weight_decay} "
            f"--epochs {args.epochs} --patience {args.patience} --precision {args.precision} --threads {args.threads} "
            f"--seed {args.seed}")


def train_in_budget(args, text: str) -> tuple[dict, float, bool]:
    """Train until the epochs end or the budget runs out (SIGINT, as Ctrl-C); (best metrics, minutes, stopped)."""
    model = ModelConfig(vocab_size=1, cell=args.cell, num_layers=args.layers, hidden_size=args.hidden,
                        embedding_dim=args.embedding_dim, dropout=args.dropout, architecture="many_to_many")
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                        lr_decay=args.lr_decay, lr_schedule=args.lr_schedule, warmup=args.warmup,
                        weight_decay=args.weight_decay, patience=args.patience, seed=args.seed, threads=args.threads,
                        clip_norm=5.0, checkpoint_every=0)
    settings = charlm.CharLMSettings(seq_len=args.seq_len, sample_every=0, text=args.text, precision=args.precision)
    timer = threading.Timer(args.minutes * 60, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.daemon = True
    started = time.perf_counter()
    timer.start()
    stopped = False
    try:
        best = charlm.train(text, model, train, settings, args.out, progress=args.progress)
    except TrainingInterrupted:
        stopped, best = True, {}
    finally:
        timer.cancel()
    return best, (time.perf_counter() - started) / 60, stopped


def epochs_summary(out: Path) -> tuple[list[dict], float | None, float | None]:
    """(per-epoch val loss with elapsed minutes, minutes to the best epoch, minutes to reach the target)."""
    history = json.loads((out / "history.json").read_text())["epochs"]
    elapsed, rows, to_target = 0.0, [], None
    for record in history:
        elapsed += record["seconds"] / 60
        rows.append({"epoch": record["epoch"], "minutes": round(elapsed, 2), "val_loss": round(record["val_loss"], 4),
                     "train_loss": round(record["train_loss"], 4)})
        if to_target is None and record["val_loss"] <= TARGET_NATS:
            to_target = round(elapsed, 2)
    best = min(rows, key=lambda r: r["val_loss"]) if rows else None
    return rows, (best["minutes"] if best else None), to_target


def generation_speed(bundle: Path, engine: str, chars: int) -> tuple[float, str]:
    """chars/s of generate() at batch 1 with one thread, and the text (seed 1, temperature 0.8)."""
    model = load_predictor(bundle, engine=engine)
    with charlm.one_thread():  # as `rnnkit generate` runs
        model.generate("ROMEO:", 20, temperature=0.8, seed=0)  # warm up
        started = time.perf_counter()
        text = model.generate("ROMEO:", chars, temperature=0.8, seed=1)
        seconds = time.perf_counter() - started
    return chars / seconds, text


def fresh_output(out: Path) -> None:
    """Remove a previous bench bundle at `out`; refuse to touch a directory that is not one."""
    import shutil

    if not out.exists() or not any(out.iterdir()):
        return
    config = out / "config.json"
    if not config.is_file() or json.loads(config.read_text()).get("task") != "charlm":
        raise SystemExit(f"{out} exists and is not a charlm bundle from an earlier run; pass another --out")
    shutil.rmtree(out)


def measure_generation(out: Path, chars: int) -> dict:
    """The generation fields of the results: chars/s per engine at batch 1 and whether the texts agree."""
    speed_numpy, text_numpy = generation_speed(out, "numpy", chars)
    speed_torch, text_torch = generation_speed(out, "torch", chars)
    print(f"generation at batch 1: numpy {speed_numpy:.0f} chars/s, torch {speed_torch:.0f} chars/s; "
          f"same text on both engines: {text_numpy == text_torch}", flush=True)
    return {"chars_per_second_numpy": round(speed_numpy, 1), "chars_per_second_torch": round(speed_torch, 1),
            "generation": {"batch": 1, "threads": 1, "chars": chars, "temperature": 0.8, "seed": 1,
                           "engines_agree": text_numpy == text_torch, "sample": "ROMEO:" + text_numpy[:300],
                           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}}


def update_generation(args) -> int:
    """--generation-only: re-measure generation on the existing bundle; keep the training results."""
    target = Path(args.results or RESULTS)
    results = json.loads(target.read_text())
    results.update(measure_generation(Path(args.out), args.gen_chars))
    atomic_write_text(target, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"generation fields updated in {target}")
    return 0


PRECISION_FIELDS = ("val_loss_nats", "minutes_to_best_epoch", "minutes_to_target", "train_minutes", "epochs",
                    "command", "date", "machine", "model", "settings")


def with_other_precision(path: Path, results: dict) -> dict:
    """`results` plus `by_precision`: this run's headline fields under its precision (fp32 | bf16, what auto
    chose), and the other precision's entry kept from the file already at `path` (the issue asks for both)."""
    precision = results["settings"]["precision"]
    previous = {}
    if path.is_file():
        old = json.loads(path.read_text())
        previous = old.get("by_precision", {})
        old_precision = old.get("settings", {}).get("precision")
        if old_precision and old_precision not in previous:  # a file from before by_precision existed
            previous[old_precision] = {k: old.get(k) for k in PRECISION_FIELDS}
    by_precision = {**previous, precision: {k: results[k] for k in PRECISION_FIELDS}}
    return {**results, "by_precision": dict(sorted(by_precision.items())),
            **{f"val_loss_nats_{p}": by_precision.get(p, {}).get("val_loss_nats") for p in ("fp32", "bf16")}}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.generation_only:
        return update_generation(args)
    text = read_text(args.text)
    fresh_output(Path(args.out))
    if args.quick:
        text = text[:200_000]
    host = {**machine(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    print(f"training {args.cell} {args.layers}x{args.hidden} for at most {args.minutes:g} min "
          f"({len(text):,} characters; load average {host['load_average_at_start']})", flush=True)
    best, minutes, stopped = train_in_budget(args, text)
    out = Path(args.out)
    if not (out / "history.json").is_file():
        raise SystemExit(f"no epoch finished within {args.minutes:g} min; give a larger --minutes or a smaller model")
    epochs, best_minutes, to_target = epochs_summary(out)
    model = load_predictor(out, engine="numpy")
    val_text = split_text(text, 0.1)[1]
    scored = model.evaluate(val_text)
    print(f"validation: {scored['loss']:.4f} nats/char ({scored['bpc']:.4f} bits/char) after {len(epochs)} epochs; "
          f"best epoch at {best_minutes} min; training stopped {'by the budget' if stopped else 'at its last epoch'} "
          f"after {minutes:.1f} min", flush=True)
    generation = measure_generation(out, args.gen_chars)
    print("sample:\n" + generation["generation"]["sample"], flush=True)
    results = {
        "val_loss_nats": round(scored["loss"], 4),
        "val_bits_per_char": round(scored["bpc"], 4),
        "val_accuracy": round(scored["accuracy"], 4),
        "val_chars": scored["chars"],
        "target_nats": TARGET_NATS,
        "reached_target": scored["loss"] <= TARGET_NATS and minutes <= args.minutes + 1,
        "train_minutes": round(minutes, 2),
        "minutes_to_best_epoch": best_minutes,
        "minutes_to_target": to_target,
        "budget_minutes": args.minutes,
        "stopped_by_budget": stopped,
        "epochs": epochs,
        **generation,
        "model": model.bundle.config.to_dict(),
        "settings": model.bundle.settings,
        "command": train_command(args),
        "bench_command": "python bench/charlm.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": host,
        "references": REFERENCES,
        "quick": args.quick,
    }
    target = args.results or (None if args.quick else str(RESULTS))
    if target:
        results = with_other_precision(Path(target), results)
        atomic_write_text(Path(target), json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"results written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

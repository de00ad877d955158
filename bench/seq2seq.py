"""Sequence-to-sequence benchmark: the dates task, and English->French BLEU with and without attention.

    python bench/seq2seq.py --pairs ../shared/data/eng-fra-tatoeba-5k.tsv          # full run
    python bench/seq2seq.py --pairs ../shared/data/eng-fra-tatoeba-5k.tsv --quick  # check the script (~2 min)

1. Dates: trains `rnnkit train seq2seq --task dates` (char level, bidirectional
   GRU encoder, Luong attention) on generated dates, timing training, then
   greedy exact match on 2,000 held-out generated dates whose written forms
   never occur in training. Target: >= 99.5% within 10 minutes.
2. Tatoeba 5k English->French, word level: 10% of the distinct English
   sentences held out (all their translations are the BLEU references);
   the same model (bidirectional GRU encoder, 128 units) trained without and
   with (Bahdanau) attention, for two seeds each, each decoded greedily and
   with beam 5; BLEU from sacrebleu (13a, lower-cased), averaged over the seeds
   (per-seed values are recorded too).

Prints the numbers and writes bench/results/seq2seq.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.pairs import group_references, read_pairs
from rnnkit.fileio import atomic_write_text
from rnnkit.tasks import load_predictor
from rnnkit.tasks import seq2seq as s2s

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "seq2seq.json"


def model_config(source, target, attention: str, hidden: int, embedding: int, dropout: float) -> ModelConfig:
    return ModelConfig(vocab_size=len(source), target_vocab_size=len(target), architecture="encoder_decoder",
                       cell="gru", embedding_dim=embedding, hidden_size=hidden, bidirectional=True,
                       dropout=dropout, attention=attention)


def run_dates(args, out: Path) -> dict:
    settings = s2s.Seq2SeqSettings(dataset="dates", source_level="char", target_level="char", max_source_len=50,
                                   max_target_len=12)
    val_size = max(1, args.dates_train // 10)
    splits = s2s.generated_splits("dates", args.dates_train, val_size, 2000, seed=0)
    source, target = s2s.build_vocabs(splits.train, settings)
    train, val = (s2s.encode_split(p, source, target, settings) for p in (splits.train, splits.val))
    config = model_config(source, target, "luong", hidden=64, embedding=32, dropout=0.0)
    train_config = TrainConfig(epochs=args.dates_epochs, batch_size=128, learning_rate=3e-3, patience=2, seed=0,
                               threads=args.threads)
    started = time.perf_counter()
    s2s.train(train, val, source, target, config, train_config, settings, out / "dates", progress=args.progress,
              overwrite=True)
    minutes = (time.perf_counter() - started) / 60
    sources, references = group_references([s for s, _ in splits.test], [t for _, t in splits.test])
    metrics = load_predictor(out / "dates", engine="torch").evaluate(sources, references)
    print(f"dates: exact match {metrics['exact_match']:.4f} on {metrics['count']} held-out dates, "
          f"trained in {minutes:.2f} min", flush=True)
    return {"dates_exact_match": round(metrics["exact_match"], 4), "dates_heldout": metrics["count"],
            "dates_train_minutes": round(minutes, 2), "dates_train_pairs": len(train),
            "dates_command": (f"rnnkit train seq2seq --task dates --train-size {args.dates_train} --attention luong "
                              f"--hidden 64 --embedding-dim 32 --dropout 0 --batch-size 128 --lr 3e-3 "
                              f"--epochs {args.dates_epochs} --threads {args.threads} --out runs/dates")}


def run_tatoeba(args, out: Path) -> dict:
    pairs = read_pairs(args.pairs)
    settings = s2s.Seq2SeqSettings(dataset="pairs", source_level="word", target_level="word", max_source_len=20,
                                   max_target_len=20)
    splits = s2s.pair_file_splits(pairs, heldout=0.1, val_fraction=0.1, seed=0)
    source, target = s2s.build_vocabs(splits.train, settings)
    train, val = (s2s.encode_split(p, source, target, settings) for p in (splits.train, splits.val))
    sources, references = group_references([s for s, _ in splits.test], [t for _, t in splits.test])
    results = {"tatoeba_heldout_sources": len(sources), "tatoeba_heldout_pairs": len(splits.test),
               "tatoeba_train_pairs": len(train), "tatoeba_seeds": list(args.seeds)}
    for name, attention in (("plain", "none"), ("attention", args.attention)):
        if name not in args.models:
            continue
        config = model_config(source, target, attention, hidden=args.hidden, embedding=args.embedding,
                              dropout=args.dropout)
        for seed in args.seeds:  # BLEU on 260 short sentences moves by 1-2 points between seeds: average them
            train_config = TrainConfig(epochs=args.tatoeba_epochs, batch_size=32, learning_rate=args.lr, patience=3,
                                       seed=seed, threads=args.threads)
            started = time.perf_counter()
            s2s.train(train, val, source, target, config, train_config, settings, out / f"{name}-{seed}",
                      progress=args.progress, overwrite=True)
            results.setdefault(f"{name}_train_minutes", []).append(round((time.perf_counter() - started) / 60, 2))
            model = load_predictor(out / f"{name}-{seed}", engine="torch")
            for beam in (1, 5):
                metrics = model.evaluate(sources, references, beam=beam)
                label = "greedy" if beam == 1 else f"beam{beam}"
                results.setdefault(f"bleu_{name}_{label}_per_seed", []).append(round(metrics["bleu"], 2))
                results.setdefault(f"exact_{name}_{label}_per_seed", []).append(round(metrics["exact_match"], 4))
                print(f"tatoeba {name:9s} seed {seed} {label:6s}: BLEU {metrics['bleu']:.2f}, exact match "
                      f"{metrics['exact_match']:.4f}", flush=True)
        for label in ("greedy", "beam5"):
            for metric in ("bleu", "exact"):
                values = results[f"{metric}_{name}_{label}_per_seed"]
                results[f"{metric}_{name}_{label}"] = round(sum(values) / len(values), 4 if metric == "exact" else 2)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default=str(ROOT.parent / "shared" / "data" / "eng-fra-tatoeba-5k.tsv"))
    parser.add_argument("--out", default="runs/bench-seq2seq", help="where the bundles go")
    parser.add_argument("--quick", action="store_true", help="tiny settings to check the script; results not saved")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on 2 shared cores, more threads were several times slower)")
    parser.add_argument("--dates-train", type=int, default=30000)
    parser.add_argument("--dates-epochs", type=int, default=5)
    parser.add_argument("--tatoeba-epochs", type=int, default=30)
    parser.add_argument("--attention", choices=("bahdanau", "luong"), default="bahdanau",
                        help="attention of the Tatoeba model (default %(default)s: 17-19 BLEU where luong gave 10-13)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="Tatoeba models per variant, averaged")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--embedding", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--models", nargs="+", choices=("plain", "attention"), default=["plain", "attention"],
                        help=argparse.SUPPRESS)  # for tuning runs
    parser.add_argument("--skip-dates", action="store_true", help=argparse.SUPPRESS)  # for tuning runs
    parser.add_argument("--progress", action="store_true", help="show epoch lines")
    args = parser.parse_args()
    if args.quick:
        args.dates_train, args.dates_epochs, args.tatoeba_epochs, args.seeds = 3000, 1, 2, [0]
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    results = {**({} if args.skip_dates else run_dates(args, out)), **run_tatoeba(args, out)}
    results.update({
        "command": " ".join(["python", "bench/seq2seq.py", *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {torch.get_num_threads()} torch "
                   f"thread(s), torch {torch.__version__}, python {platform.python_version()}",
        "settings": {k: v for k, v in vars(args).items() if k not in ("progress",)},
        "targets": {"dates_exact_match": ">= 0.995", "dates_train_minutes": "<= 10",
                    "bleu_attention": "> bleu_plain (greedy and beam 5)"},
    })
    print(json.dumps(results, indent=2))
    if args.quick or args.skip_dates or len(args.models) < 2:
        print("a partial or --quick run: results not written", file=sys.stderr)
    else:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RESULTS, json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

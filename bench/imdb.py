"""IMDB sentiment benchmark: accuracy within a time budget, trainer throughput, predict latency.

    python bench/imdb.py --data ../shared/data/aclImdb_v1.tar.gz            # everything (~20 min)
    python bench/imdb.py --data ... --skip-train --bundle runs/imdb          # throughput + predict only

1. Trains the default model (`rnnkit train imdb`, default flags) from a cold
   cache, timing the whole command, then evaluates it on the 25,000 test reviews.
2. Throughput: real (non-padding) tokens per second of one training step of
   rnnkit's trainer (length-bucketed, masked batches) against a plain PyTorch
   loop over the same model and data padded to maxlen (Keras-style), run
   interleaved in this one process; the median ratio is reported.
3. `rnnkit predict BUNDLE "one sentence"`, whole process, numpy and torch engines.

Prints a table and writes bench/results/imdb.json.
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

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "imdb.json"
SENTENCE = "This movie is really bad. I do not like it."


def train_default(data: str, out: Path) -> dict:
    """Run the default training command from a cold tokenizer cache; return minutes and the command."""
    command = [sys.executable, "-m", "rnnkit.cli", "train", "imdb", "--data", data, "--out", str(out), "--quiet",
               "--overwrite"]  # the bench's own bundle from an earlier run is replaced
    env = {**os.environ, "RNNKIT_CACHE": tempfile.mkdtemp(prefix="rnnkit-cache-")}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    minutes = (time.perf_counter() - started) / 60
    return {"train_minutes": round(minutes, 2), "train_command": "rnnkit train imdb --data PATH --out runs/imdb"}


def evaluate(bundle: Path, data: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "rnnkit.cli", "evaluate", str(bundle), "--data", data, "--json",
                          "--engine", "torch", "--quiet"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------- throughput

class PlainModel(nn.Module):
    """The same network written the usual way: nn.GRU over fixed-length padded batches, no masks."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden: int, cell: str, bidirectional: bool,
                 dropout: float) -> None:
        super().__init__()
        module = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.rnn = module(embedding_dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1) * 2, 1)

    def forward(self, ids):
        out, _ = self.rnn(self.dropout(self.embedding(ids)))
        return self.head(self.dropout(torch.cat([out.mean(1), out.amax(1)], -1)))


def throughput(data: str, batches: int, repeats: int) -> dict:
    from rnnkit.config import ModelConfig, TrainConfig
    from rnnkit.data.batching import pad_batch, truncate
    from rnnkit.tasks.sentiment import SentimentSettings, imdb_train_split, make_batches
    from rnnkit.torch_engine import build_model
    from rnnkit.training import make_optimizer

    settings = SentimentSettings()
    sequences, labels, vocab = imdb_train_split(data, settings.vocab_size, progress=False)
    config = ModelConfig(vocab_size=len(vocab), cell="gru", bidirectional=True, pooling="mean_max", dropout=0.3)
    train_config = TrainConfig()
    rng = np.random.default_rng(0)
    ours_batches = make_batches(sequences, labels, settings, train_config.batch_size, rng)[:batches]
    # the plain loop: random batches, every review pre-padded/truncated to maxlen (keras pad_sequences)
    order = rng.permutation(len(sequences))
    plain_batches = []
    for i in range(batches):
        index = order[i * 64:(i + 1) * 64]
        cut = [truncate(sequences[j], settings.maxlen, "pre") for j in index]
        ids, lengths = pad_batch(cut, padding="pre", length=settings.maxlen)
        plain_batches.append((torch.from_numpy(ids), torch.from_numpy(labels[index]).float(), int(lengths.sum())))

    torch.manual_seed(0)
    ours = build_model(config)
    ours_opt = make_optimizer(ours, train_config)
    plain = PlainModel(len(vocab), 128, 128, "gru", True, dropout=0.3)
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=2e-3, weight_decay=0.0)

    def run_ours() -> float:
        tokens, started = 0, time.perf_counter()
        for b in ours_batches:
            logits = ours(torch.from_numpy(b.ids), torch.from_numpy(b.lengths)).squeeze(-1)
            loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(b.labels))
            ours_opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(ours.parameters(), 5.0)
            ours_opt.step()
            tokens += int(b.lengths.sum())
        return tokens / (time.perf_counter() - started)

    def run_plain() -> float:
        tokens, started = 0, time.perf_counter()
        for ids, y, real in plain_batches:
            loss = F.binary_cross_entropy_with_logits(plain(ids).squeeze(-1), y)
            plain_opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(plain.parameters(), 5.0)
            plain_opt.step()
            tokens += real
        return tokens / (time.perf_counter() - started)

    ours.train(), plain.train()
    run_ours(), run_plain()  # warm-up
    pairs = [(run_ours(), run_plain()) for _ in range(repeats)]
    ratios = [a / b for a, b in pairs]
    return {"tokens_per_second_rnnkit": round(statistics.median(a for a, _ in pairs)),
            "tokens_per_second_plain_torch": round(statistics.median(b for _, b in pairs)),
            "throughput_ratio_vs_plain_torch": round(statistics.median(ratios), 3),
            "throughput_ratios": [round(r, 3) for r in ratios],
            "throughput_setup": f"{batches} batches of 64, bi-GRU 128, median of {repeats} interleaved repeats; "
                                "plain = nn.GRU over reviews pre-padded to maxlen 500"}


def predict_seconds(bundle: Path, engine: str, runs: int = 7) -> float:
    command = [sys.executable, "-m", "rnnkit.cli", "predict", str(bundle), "--engine", engine, SENTENCE]
    subprocess.run(command, check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--bundle", default=str(ROOT / "runs" / "imdb-bench"))
    parser.add_argument("--skip-train", action="store_true", help="reuse --bundle instead of training")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    bundle = Path(args.bundle)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.skip_train:
        results.update(train_default(args.data, bundle))
        epochs = json.loads((bundle / "history.json").read_text())["epochs"]
        results["train_epochs"] = [{k: e.get(k) for k in ("epoch", "seconds", "threads", "val_accuracy", "val_loss",
                                                          "best")} for e in epochs]
    metrics = evaluate(bundle, args.data)
    results.update({"test_accuracy": round(metrics["accuracy"], 4), "test_loss": round(metrics["loss"], 4),
                    "test_confusion_matrix": metrics.get("confusion_matrix") or metrics["report"]["confusion_matrix"], "test_reviews": metrics["count"]})
    results.update(throughput(args.data, args.batches, args.repeats))
    for engine in ("numpy", "torch"):
        try:
            results[f"predict_process_seconds_{engine}"] = predict_seconds(bundle, engine)
        except subprocess.CalledProcessError as exc:
            results[f"predict_process_seconds_{engine}"] = None
            print(f"predict --engine {engine} failed: {exc.stderr.decode()[-300:]}", file=sys.stderr)
    results["predict_process_seconds"] = results.get("predict_process_seconds_numpy") or results["predict_process_seconds_torch"]
    results.update({"command": "python bench/imdb.py --data ../shared/data/aclImdb_v1.tar.gz",
                    "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for key in ("test_accuracy", "train_minutes", "tokens_per_second_rnnkit", "tokens_per_second_plain_torch",
                "throughput_ratio_vs_plain_torch", "predict_process_seconds_numpy", "predict_process_seconds_torch"):
        print(f"{key:36s} {results.get(key)}")


if __name__ == "__main__":
    main()

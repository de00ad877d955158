"""bf16 or fp32 on this CPU: a training step of each language model's default, both ways, side by side.

    python bench/precision.py                       # ~5 minutes on 2 cores
    python bench/precision.py --data ../shared/data/aclImdb_v1.tar.gz   # the word LM on real text (else Zipf ids)

For the character LM (2x512 LSTM, 32 x 128 characters) and the word LM (1x256 LSTM, adaptive softmax over
30,000 words, 64 x 70 words), at 2 threads and at 1: a whole training step (forward under bf16 autocast or
not, the loss, backward, AdamW) timed in alternation, fp32 then bf16, after warm-ups; medians of --steps.
`speedup` is fp32 seconds / bf16 seconds (> 1: bf16 is faster). What `--precision auto` chooses
(`rnnkit.tasks.lm.resolve_precision`) is recorded beside it with the CPU's bf16 flags.

Writes bench/results/precision.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import git_commit, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "precision.json"


def models(data: Path | None):
    """(name, model, inputs (N, T+1) ids, uses targets) for each language model's default."""
    import numpy as np
    import torch

    from rnnkit.config import ModelConfig
    from rnnkit.tasks.charlm.settings import DEFAULTS as CHAR, lm_config
    from rnnkit.tasks.wordlm.settings import DEFAULTS as WORD, WordLMSettings, word_lm_config
    from rnnkit.torch_engine import build_model

    torch.manual_seed(0)
    char = lm_config(ModelConfig(vocab_size=1, cell=CHAR["cell"], num_layers=CHAR["layers"],
                                 hidden_size=CHAR["hidden"], embedding_dim=CHAR["embedding_dim"],
                                 dropout=CHAR["dropout"], bidirectional=False), 66)
    char_ids = torch.randint(1, 66, (CHAR["batch_size"], CHAR["seq_len"] + 1))
    word = word_lm_config(ModelConfig(vocab_size=1, cell=WORD["cell"], num_layers=WORD["layers"],
                                      hidden_size=WORD["hidden"], embedding_dim=WORD["embedding_dim"],
                                      dropout=WORD["dropout"], bidirectional=False), WORD["vocab_size"],
                          WordLMSettings())
    shape = (WORD["batch_size"], WORD["seq_len"] + 1)
    if data is not None:
        from rnnkit.data.documents import read_documents
        from rnnkit.data.vocab import Vocab

        documents = read_documents([data], max_tokens=400_000, progress=False)
        counts: dict = {}
        for doc in documents.docs:
            for i in doc:
                counts[documents.words[i]] = counts.get(documents.words[i], 0) + 1
        vocab = Vocab.build(counts, max_size=WORD["vocab_size"])
        words = [documents.words[i] for doc in documents.docs for i in doc][:shape[0] * shape[1]]
        word_ids = torch.tensor(vocab.encode(words), dtype=torch.long).view(shape)
    else:  # Zipf-distributed ids: most tokens in the adaptive softmax's head, as in text
        rng = np.random.default_rng(0)
        word_ids = torch.from_numpy(np.minimum(rng.zipf(1.2, size=shape), WORD["vocab_size"] - 1)).long()
    return [("charlm", build_model(char), char_ids, False), ("wordlm", build_model(word), word_ids, True)]


def step_seconds(torch, model, ids, targets: bool, precision: str) -> float:
    import torch.nn.functional as F

    from rnnkit.tasks.lm import autocast

    optimizer = step_seconds.optimizers.setdefault(id(model), torch.optim.AdamW(model.parameters(), lr=1e-4))
    started = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    x, y = ids[:, :-1], ids[:, 1:]
    with autocast(torch, "cpu", precision):
        if targets:
            log_p, _ = model(x, None, targets=y)
            loss = -log_p.float().mean()
        else:
            logits, _ = model(x, None)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    optimizer.step()
    return time.perf_counter() - started


step_seconds.optimizers = {}


def main() -> int:
    import torch

    from rnnkit.tasks.lm import resolve_precision

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="aclImdb_v1.tar.gz: the word LM reads real text")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per setting (default %(default)s)")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    args = parser.parse_args()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    results = {"command": "python bench/precision.py " + " ".join(sys.argv[1:]),
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
               "commit": git_commit(), "cpu_bf16_flags": sorted({f for f in ("amx_bf16", "avx512_bf16")
                                                                 if f" {f}" in flags}),
               "auto_chooses": resolve_precision("auto", "cpu"), "models": {}}
    for name, model, ids, targets in models(args.data):
        model.train()
        for threads in args.threads:
            torch.set_num_threads(threads)
            times = {"fp32": [], "bf16": []}
            for precision in ("fp32", "bf16", "fp32", "bf16"):  # warm-ups
                step_seconds(torch, model, ids, targets, precision)
            for _ in range(args.steps):
                for precision in ("fp32", "bf16"):
                    times[precision].append(step_seconds(torch, model, ids, targets, precision))
            fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
            results["models"].setdefault(name, {})[f"threads_{threads}"] = {
                "fp32_seconds": round(fp32, 4), "bf16_seconds": round(bf16, 4), "speedup": round(fp32 / bf16, 3)}
            print(name, threads, results["models"][name][f"threads_{threads}"], flush=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

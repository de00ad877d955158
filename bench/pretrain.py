"""Pretraining on unlabeled text, then fine-tuning: IMDB against the linear model a user tries first.

    python bench/pretrain.py --data ../shared/data/aclImdb_v1.tar.gz                 # everything (~2.5 h, 2 cores)
    python bench/pretrain.py --data ... --scratch-bundle runs/imdb-bench               # reuse a from-scratch bundle
    python bench/pretrain.py --data ... --stages baseline,small                        # some stages only
    python bench/pretrain.py --data ... --quick                                        # a few minutes: the script works

Side by side in this one script, every model scored on the 25,000 IMDB test
reviews (read only to score), the results file written after each stage:

  baseline   NB-weighted logistic regression (Wang & Manning 2012's NBSVM
             features with a logistic loss): binarized word uni+bi+trigrams,
             the log-count ratio r scales each feature; scikit-learn, fitted on
             the 25,000 labelled training reviews. Accuracy and seconds.
  scratch    `rnnkit train imdb` with its defaults (today's model), or the
             bundle --scratch-bundle names (trained by the same command).
  pretrain   `rnnkit pretrain --text DATA` (aclImdb train/pos, train/neg,
             train/unsup: 75,000 reviews; test/ is never read) with
             --pretrain-options; its validation perplexity and minutes.
  profile    where a pretraining step's time goes: a whole step against the output layer alone (the
             adaptive softmax's share), median of 20, the torch engine.
  finetune   `rnnkit train imdb --init LM` with --finetune-options; test
             accuracy and minutes.
  small      the small-label regime: a fixed stratified sample of --small
             labelled reviews (seed 0), trained from scratch and from the
             pretrained LM, each scored on the 25,000 test reviews.

Writes bench/results/pretrain.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shlex
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import git_commit, machine, rnnkit, test_accuracy  # noqa: E402

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "pretrain.json"
STAGES = ("baseline", "scratch", "pretrain", "profile", "finetune", "small")




# --------------------------------------------------------------------------- the baseline

def nb_logistic_regression(data: Path, ngrams: int = 3) -> dict:
    """NB-weighted logistic regression on binarized word n-grams (1..ngrams): accuracy and seconds."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from rnnkit.tasks.classify.imdb import imdb_split

    train, test = imdb_split(data, "train"), imdb_split(data, "test")
    started = time.perf_counter()
    vectorizer = CountVectorizer(ngram_range=(1, ngrams), binary=True, token_pattern=r"(?u)\b\w+\b|[!?]",
                                 dtype=np.float32)
    x_train = vectorizer.fit_transform(train.texts)
    y = np.asarray([label == "positive" for label in train.labels])
    alpha = 1.0  # Laplace smoothing of the per-class feature counts
    p = alpha + np.asarray(x_train[y].sum(axis=0)).ravel()
    q = alpha + np.asarray(x_train[~y].sum(axis=0)).ravel()
    r = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
    model = LogisticRegression(C=1.0, max_iter=1000, solver="liblinear", dual=True)
    model.fit(x_train.multiply(r).tocsr(), y)
    x_test = vectorizer.transform(test.texts).multiply(r).tocsr()
    accuracy = float(np.mean(model.predict(x_test) == np.asarray([label == "positive" for label in test.labels])))
    return {"test_accuracy_baseline_nblr": round(accuracy, 4),
            "baseline_seconds": round(time.perf_counter() - started, 1),
            "baseline": f"binarized word 1-{ngrams}-grams ({x_train.shape[1]:,} features), NB log-count ratio "
                        "scaling, LogisticRegression(C=1, liblinear), scikit-learn"}


# --------------------------------------------------------------------------- the language model

def lm_facts(lm: Path) -> dict:
    """What the LM bundle says of its pretraining: validation perplexity, the epochs and their training tokens per
    second (the epoch's seconds include its validation and checkpoints)."""
    config = json.loads((lm / "config.json").read_text())
    epochs = json.loads((lm / "history.json").read_text()).get("epochs", [])
    tokens = config["settings"].get("train_tokens")
    return {"lm_val_perplexity": config["metrics"].get("val_perplexity"),
            "lm_val_loss_nats": config["metrics"].get("val_loss"), "pretrain_history": epochs,
            "pretrain_epochs_done": len(epochs), "pretrain_train_tokens_per_epoch": tokens,
            "pretrain_tokens_per_second": [round(tokens / e["seconds"]) for e in epochs] if tokens else None}


def softmax_share(lm: Path, data: Path, steps: int = 20) -> dict:
    """Where a pretraining step's time goes: the median seconds of a whole training step (forward, backward,
    Adam) of the LM on one batch of real text (batch_size x seq_len tokens of `data`: an adaptive softmax's cost
    depends on how many tokens fall in its rare clusters) and of the output layer's forward and backward alone
    on the same number of hidden states; their ratio is the output layer's share."""
    import statistics

    import torch

    from rnnkit.bundle import load_bundle
    from rnnkit.data.documents import read_documents
    from rnnkit.data.vocab import Vocab
    from rnnkit.torch_engine import build_model

    bundle = load_bundle(lm)
    train = bundle.train or {}
    batch, seq_len = train.get("batch_size", 64), bundle.settings.get("seq_len", 70)
    model = build_model(bundle.config).train()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in bundle.tensors.items()}, strict=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    need = batch * (seq_len + 1)
    documents = read_documents([data], max_tokens=need, progress=False)
    words = [documents.words[i] for doc in documents.docs for i in doc][:need]
    ids = torch.tensor(Vocab.from_json(bundle.vocab).encode(words), dtype=torch.long).view(batch, seq_len + 1)
    hidden = torch.randn(batch * seq_len, bundle.config.hidden_size, requires_grad=True)

    def whole():
        optimizer.zero_grad(set_to_none=True)
        log_p, _ = model(ids[:, :-1], None, targets=ids[:, 1:])
        (-log_p.mean()).backward()
        optimizer.step()

    def output_layer():
        head = model.head
        if bundle.config.output_layer == "adaptive":
            loss = head(hidden, ids[:, 1:].reshape(-1)).loss
        else:
            loss = torch.nn.functional.cross_entropy(head(hidden), ids[:, 1:].reshape(-1))
        loss.backward()

    def median(fn) -> float:
        for _ in range(3):
            fn()
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    step, head = median(whole), median(output_layer)
    return {"pretrain_step_seconds": round(step, 4), "pretrain_output_layer_seconds": round(head, 4),
            "pretrain_output_layer_share": round(head / step, 3), "pretrain_profile_threads": torch.get_num_threads(),
            "pretrain_profile_batch": [batch, seq_len],
            "pretrain_profile_tokens_in_head": round(float((ids[:, 1:] < bundle.config.cutoffs[0]).float().mean()), 3)
            if bundle.config.output_layer == "adaptive" else None}


# --------------------------------------------------------------------------- the small-label regime

def small_sample(data: Path, count: int, target: Path, seed: int = 0) -> Path:
    """An aclImdb tarball with `count` training reviews (stratified: half each class, seeded) and every test one."""
    from rnnkit.data.imdb import iter_reviews, locate

    reviews = list(iter_reviews(locate(data)))
    rng = random.Random(seed)
    chosen = []
    for label in (0, 1):
        pool = [r for r in reviews if r.split == "train" and r.label == label]
        chosen += rng.sample(pool, count // 2)
    chosen += [r for r in reviews if r.split == "test"]
    with tarfile.open(target, "w:gz") as archive:
        for number, review in enumerate(chosen):
            folder = "pos" if review.label else "neg"
            body = review.text.encode("utf-8")
            info = tarfile.TarInfo(f"aclImdb/{review.split}/{folder}/{number}_{review.rating}.txt")
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return target


# --------------------------------------------------------------------------- the run

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an aclImdb/ folder")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, from {', '.join(STAGES)}")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "pretrain-bench",
                        help="where the bundles go (default %(default)s)")
    parser.add_argument("--scratch-bundle", type=Path, help="a bundle of `rnnkit train imdb` to score, not train")
    parser.add_argument("--pretrain-options", default="--epochs 1",
                        help="options of `rnnkit pretrain` (default %(default)r)")
    parser.add_argument("--finetune-options", default="", help="options of `rnnkit train imdb --init LM`")
    parser.add_argument("--small", type=int, default=500, help="labelled reviews of the small-label regime")
    parser.add_argument("--quick", action="store_true",
                        help="a few minutes: tiny pretraining and fine-tuning, 1-grams baseline (checks the script)")
    args = parser.parse_args()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if not stages or set(stages) - set(STAGES):
        parser.error(f"--stages takes a comma-separated list from {', '.join(STAGES)}; got {args.stages!r}")
    if args.quick:
        args.pretrain_options += " --max-tokens 200000 --hidden 64 --embedding-dim 64 --vocab-size 5000"
        args.finetune_options += " --epochs 1"
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() and not args.quick else {}
    command = "python bench/pretrain.py " + shlex.join(sys.argv[1:])
    results.setdefault("stage_commands", {}).update(dict.fromkeys(stages, command))  # stages may run apart
    results.update({"command": command,
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(), "commit": git_commit()})
    out_file = RESULTS if not args.quick else Path(tempfile.mkdtemp()) / "pretrain.json"
    lm, env = work / "lm", {**os.environ}

    def record(**values) -> None:
        results.update(values)
        from rnnkit.fileio import atomic_write_text

        atomic_write_text(out_file, json.dumps(results, indent=2) + "\n")
        print(json.dumps(values), flush=True)

    if "baseline" in stages:
        record(**nb_logistic_regression(data, ngrams=1 if args.quick else 3))
    if "scratch" in stages:
        bundle = args.scratch_bundle
        minutes = None
        if bundle is None:
            bundle = work / "scratch"
            extra = ["--epochs", "1"] if args.quick else []
            minutes, _ = rnnkit("train", "imdb", "--data", str(data), "--out", str(bundle), "--overwrite", *extra)
        record(test_accuracy_scratch=test_accuracy(bundle, data), scratch_minutes=minutes,
               scratch_bundle=str(bundle))
    if "pretrain" in stages:
        minutes, _ = rnnkit("pretrain", "--text", str(data), "--out", str(lm), "--overwrite",
                            *shlex.split(args.pretrain_options), env=env)
        record(pretrain_minutes=minutes, pretrain_options=args.pretrain_options, **lm_facts(lm))
    if "profile" in stages:
        record(**softmax_share(lm, data))
    if "finetune" in stages:
        bundle = work / "finetuned"
        minutes, _ = rnnkit("train", "imdb", "--data", str(data), "--init", str(lm), "--out", str(bundle),
                            "--overwrite", *shlex.split(args.finetune_options), env=env)
        record(test_accuracy_pretrained=test_accuracy(bundle, data), finetune_minutes=minutes,
               finetune_options=args.finetune_options)
        if results.get("pretrain_minutes") is not None:
            record(pretrained_total_minutes=round(results["pretrain_minutes"] + minutes, 2))
    if "small" in stages:
        sample = small_sample(data, args.small, work / f"imdb-{args.small}.tar.gz")
        for name, init in (("scratch", []), ("pretrained", ["--init", str(lm)])):
            bundle = work / f"small-{name}"
            minutes, _ = rnnkit("train", "imdb", "--data", str(sample), "--out", str(bundle), "--overwrite", *init,
                                *shlex.split(args.finetune_options), env=env)
            record(**{f"test_accuracy_{args.small}_labels_{name}": test_accuracy(bundle, sample),
                      f"small_{name}_minutes": minutes})
    print(f"written to {out_file}")
    return 0




if __name__ == "__main__":
    sys.exit(main())

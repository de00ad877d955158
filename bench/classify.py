"""Text classification on your own data, measured on IMDB read as labelled texts (bench/results/classify.json).

    python bench/classify.py --data ../shared/data/aclImdb_v1.tar.gz              # everything (~60 min, 2 cores)
    python bench/classify.py --data ... --skip-preset                               # without `train imdb`

Side by side in this one script, on the 25,000 IMDB training reviews (the test
reviews are read only for the final scores), in this order, the results file
written after each stage:

1. the star rating as 8 classes (1-4 and 7-10, from each file name) through
   `classify` (the default sentiment model and training options, as `rnnkit
   train imdb` uses them): accuracy, macro-F1 and the mean absolute rating
   error on the test reviews;
2. a TF-IDF + logistic regression baseline (scikit-learn, word uni+bigrams)
   fitted on the same training reviews, scored on the same test reviews;
3. binary sentiment through `classify` (labels negative / positive);
4. `rnnkit train imdb` itself, the preset the binary classifier should equal
   within noise (same model, same data; --skip-preset leaves it out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.imdb import iter_reviews, locate
from rnnkit.data.labelled import LabelledTexts
from rnnkit.fileio import atomic_write_text
from rnnkit.tasks.classify import ClassifySettings, train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "classify.json"
RATINGS = ("1", "2", "3", "4", "7", "8", "9", "10")


def read_imdb(path: str) -> dict[str, list]:
    """{"train": [(text, rating)], "test": [...]} from the tarball or folder."""
    splits: dict[str, list] = {"train": [], "test": []}
    for review in iter_reviews(locate(path)):
        splits[review.split].append((review.text, review.rating))
    return splits


def default_model() -> ModelConfig:
    """`rnnkit train imdb`'s default model (vocabulary and output sizes are set from the data)."""
    return ModelConfig(vocab_size=1, cell="gru", num_layers=1, embedding_dim=128, hidden_size=128,
                       bidirectional=True, dropout=0.3, pooling="mean_max")


def run_classify(name: str, train_rows, test_rows, label_of, labels, out: Path, epochs: int, patience: int) -> dict:
    """Train `classify` on (text, rating) rows labelled by `label_of`; score the test rows."""
    data = LabelledTexts([t for t, _ in train_rows], [label_of(r) for _, r in train_rows], f"imdb train ({name})")
    test = LabelledTexts([t for t, _ in test_rows], [label_of(r) for _, r in test_rows], f"imdb test ({name})")
    settings = ClassifySettings(labels=labels, maxlen=500, truncating="pre", vocab_size=30000)
    config = TrainConfig(epochs=epochs, batch_size=64, learning_rate=2e-3, clip_norm=5.0, patience=patience, seed=0)
    started = time.perf_counter()
    result = train(data, default_model(), config, settings, out, test=test, progress=False)
    minutes = (time.perf_counter() - started) / 60
    report = result["report"]
    print(f"{name}: test accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f} ({minutes:.1f} min)",
          flush=True)
    return {"report": report, "minutes": round(minutes, 2), "out": out}


def rating_mae(out: Path, test_rows) -> float:
    """Mean absolute error of the predicted rating (the most probable class) on the test reviews."""
    import rnnkit

    model = rnnkit.load(out)
    answers = model.predict([t for t, _ in test_rows])
    errors = [abs(int(a["label"]) - r) for a, (_, r) in zip(answers, test_rows) if "label" in a]
    return float(np.mean(errors))


def preset(data: str, out: Path) -> dict:
    """`rnnkit train imdb` with its defaults, then its test accuracy."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rnnkit.cli", "train", "imdb", "--data", data, "--out", str(out), "--quiet"],
                   check=True)
    minutes = (time.perf_counter() - started) / 60
    scored = subprocess.run([sys.executable, "-m", "rnnkit.cli", "evaluate", str(out), "--data", data, "--json",
                             "--quiet"], check=True, capture_output=True, text=True).stdout
    accuracy = json.loads(scored.strip().splitlines()[-1])["accuracy"]
    print(f"rnnkit train imdb: test accuracy {accuracy:.4f} ({minutes:.1f} min)", flush=True)
    return {"accuracy": accuracy, "minutes": round(minutes, 2)}


def baseline(train_rows, test_rows) -> dict:
    """TF-IDF (word uni+bigrams, sublinear tf, min_df 2) + multinomial logistic regression on the ratings."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=200_000)
    x_train = vectorizer.fit_transform([t for t, _ in train_rows])
    x_test = vectorizer.transform([t for t, _ in test_rows])
    y_train, y_test = [str(r) for _, r in train_rows], [str(r) for _, r in test_rows]
    model = LogisticRegression(C=2.0, max_iter=2000).fit(x_train, y_train)
    guess = model.predict(x_test)
    minutes = (time.perf_counter() - started) / 60
    result = {"accuracy": float(accuracy_score(y_test, guess)),
              "macro_f1": float(f1_score(y_test, guess, average="macro")),
              "mae": float(np.mean(np.abs(guess.astype(int) - np.array(y_test, dtype=int)))),
              "minutes": round(minutes, 2)}
    print(f"TF-IDF + logistic regression (ratings): accuracy {result['accuracy']:.4f}, macro-F1 "
          f"{result['macro_f1']:.4f}, MAE {result['mae']:.3f} ({minutes:.1f} min)", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an aclImdb/ folder")
    parser.add_argument("--epochs", type=int, default=6, help="as rnnkit train imdb (default %(default)s)")
    parser.add_argument("--patience", type=int, default=2, help="as rnnkit train imdb (default %(default)s)")
    parser.add_argument("--skip-preset", action="store_true", help="leave out `rnnkit train imdb`")
    args = parser.parse_args()

    splits = read_imdb(args.data)
    train_rows, test_rows = splits["train"], splits["test"]
    work = Path(tempfile.mkdtemp(prefix="rnnkit-bench-classify-"))
    started = time.perf_counter()
    results = {
        "command": "python bench/classify.py --data ../shared/data/aclImdb_v1.tar.gz"
                   + (" --skip-preset" if args.skip_preset else ""),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "test_reviews": len(test_rows),
        "train_minutes": {},
    }

    def record(**values) -> None:  # after each stage: a stopped run keeps what it measured
        results.update(values)
        results["total_minutes"] = round((time.perf_counter() - started) / 60, 1)
        atomic_write_text(RESULTS, json.dumps(results, indent=2) + "\n")

    # the 8-class rating first: the number the baseline is compared with
    rating = run_classify("rating", train_rows, test_rows, str, RATINGS, work / "rating", args.epochs, args.patience)
    mae = rating_mae(work / "rating", test_rows)
    print(f"rating: mean absolute rating error {mae:.3f}", flush=True)
    results["train_minutes"]["rating"] = rating["minutes"]
    import rnnkit  # the model as trained (vocabulary and output sizes set from the data)

    results["model"] = rnnkit.load(work / "rating").bundle.config.describe() + " (maxlen 500; Dense(1) for binary)"
    record(rating_test_accuracy=round(rating["report"]["accuracy"], 4),
           rating_macro_f1=round(rating["report"]["macro_f1"], 4), rating_mae=round(mae, 3))
    reference = baseline(train_rows, test_rows)
    results["train_minutes"]["baseline"] = reference["minutes"]
    record(baseline_rating_accuracy=round(reference["accuracy"], 4),
           baseline_rating_macro_f1=round(reference["macro_f1"], 4), baseline_rating_mae=round(reference["mae"], 3))
    binary = run_classify("binary", train_rows, test_rows, lambda r: "positive" if r >= 7 else "negative",
                          ("negative", "positive"), work / "binary", args.epochs, args.patience)
    results["train_minutes"]["binary"] = binary["minutes"]
    record(binary_test_accuracy=round(binary["report"]["accuracy"], 4),
           binary_test_macro_f1=round(binary["report"]["macro_f1"], 4))
    if not args.skip_preset:
        imdb = preset(args.data, work / "imdb")
        results["train_minutes"]["imdb_preset"] = imdb["minutes"]
        record(imdb_preset_test_accuracy=round(imdb["accuracy"], 4))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""What a trained classifier's bundle says about itself: evaluation.json, confusion_matrix.png, README.md.

The model card (README.md) is written for a person who finds the bundle later:
the task and labels, the data and its counts, the model, the metrics and on
which split they were measured, the command that made it, the date, and its
limits.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from rnnkit.config import TrainConfig, finite_json
from rnnkit.data.labelled import LabelledTexts, class_counts
from rnnkit.fileio import atomic_write_text
from rnnkit.metrics import format_report, plot_confusion_matrix

EVALUATION_FILE = "evaluation.json"
CONFUSION_FILE = "confusion_matrix.png"
CARD_FILE = "README.md"


def write_report(out_dir: str | Path, split: LabelledTexts, split_name: str, training, train_config: TrainConfig,
                 engine: str, command: str | None) -> dict:
    """Evaluate the saved bundle on `split` and write the evaluation, the confusion matrix and the model card.

    Returns the evaluation (as in evaluation.json).
    """
    from rnnkit.tasks.classify.predictor import ClassifierModel
    from rnnkit.bundle import load_bundle

    out_dir = Path(out_dir)
    model = ClassifierModel(load_bundle(out_dir), "numpy")
    evaluation = model.evaluate(split.texts, split.labels)
    evaluation.update({"split": split_name, "source": split.source})
    atomic_write_text(out_dir / EVALUATION_FILE, json.dumps(finite_json(evaluation), indent=2, ensure_ascii=False))
    if not model.settings.multi_label:
        plot_confusion_matrix(evaluation["report"]["confusion_matrix"], list(model.labels), out_dir / CONFUSION_FILE)
    atomic_write_text(out_dir / CARD_FILE, model_card(model, evaluation, training, train_config, engine, command))
    return evaluation


def model_card(model, evaluation: dict, training, train_config: TrainConfig, engine: str,
               command: str | None) -> str:
    s, config = model.settings, model.bundle.config
    history = json.loads((model.bundle.path / "history.json").read_text())["epochs"]
    best = [e for e in history if e.get("best")][-1]
    counts = class_counts(training.train.labels)
    kind = {"binary": "binary", "multiclass": "multi-class", "multilabel": "multi-label"}[s.kind]
    where = ("the held-out test split" if evaluation["split"] == "test" else
             "the validation split (no test split was given: these numbers also chose the best epoch, "
             "so they are optimistic; pass --test for an unbiased estimate)")
    lines = [
        f"# {model.bundle.path.name}: a {kind} text classifier (rnnkit)",
        "",
        f"Predicts {'tags' if s.multi_label else 'one of'} {len(s.labels)} labels: "
        + ", ".join(f"`{label}`" for label in s.labels) + ".",
        "",
        "## Data",
        f"- read from `{training.data.source}` (text: `{s.text_field}`, label: `{s.label_field}`)"
        + (f"; rows left out: {training.data.skipped}" if training.data.skipped else ""),
        f"- training: {len(training.train_seqs):,} texts; validation: {len(training.val_seqs):,} texts"
        + (" (given)" if training.given_valid is not None else
           f" ({train_config.validation_fraction:g} of the data, stratified, seed {train_config.seed})"),
        "- training texts per label: " + ", ".join(f"`{label}` {n:,}" for label, n in counts.items()),
        "",
        "## Model",
        f"- {config.describe()} -> {'softmax' if s.kind == 'multiclass' else 'sigmoid'}",
        f"- vocabulary: {len(model.vocab):,} words of the training split; texts cut to {s.maxlen} tokens "
        f"({'keeping the end' if s.truncating == 'pre' else 'keeping the start'}); class weights: {s.class_weights}",
        *_vectors_lines(model.bundle.settings.get("embeddings")),
        f"- trained with the {engine} engine, {train_config.optimizer} at lr {train_config.learning_rate:g}, "
        f"best epoch {best['epoch']} of {len(history)} (validation loss {best['val_loss']:.4f})",
        "",
        f"## Metrics on {where}",
        f"- {evaluation['count']:,} texts: accuracy {evaluation['accuracy']:.4f}, macro-F1 {evaluation['macro_f1']:.4f}, "
        f"loss {evaluation['loss']:.4f}" + (f"; {evaluation['unreadable']} text(s) without a known word left out"
                                            if evaluation["unreadable"] else ""),
        "",
        "```",
        format_report(evaluation["report"]),
        "```",
        "",
        "## How it was made",
        f"- command: `{command or 'rnnkit (Python API)'}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        "## Limits",
        "- It reads words (letters and digits; the tokenizer `rnnkit-word-v1` lower-cases and drops punctuation "
        "but ! and ?); words it never saw in training count as unknown.",
        f"- It reads at most {s.maxlen} tokens of a text: the {'last' if s.truncating == 'pre' else 'first'} "
        f"{s.maxlen} of a longer one.",
        "- It knows only the labels above and the kind of text it was trained on; measure it on your own "
        "held-out data before trusting it elsewhere (`rnnkit evaluate BUNDLE --data FILE`).",
        "",
    ]
    return "\n".join(lines)


def _vectors_lines(embeddings: dict | None) -> list[str]:
    """The card's line on the pretrained word vectors the embedding started from (none without them)."""
    if not embeddings:
        return []
    tokens = embeddings.get("token_coverage")
    return [f"- word vectors: `{embeddings['file']}` ({embeddings['dim']}-d) for {embeddings['words_found']:,} "
            f"vocabulary words ({embeddings['coverage']:.1%})"
            + ("" if tokens is None else f", {tokens:.1%} of the training tokens")
            + ("; frozen in training (the other words keep random vectors)" if embeddings["frozen"] else
               "; fine-tuned in training (the other words' vectors learned from a random start)")]

"""Classification metrics: reports (JSON-ready dicts), a text table, a confusion-matrix PNG, worst mistakes.

Single-label (one class per example, ids 0..K-1):

- precision_k = TP_k / (TP_k + FP_k), recall_k = TP_k / (TP_k + FN_k),
  f1_k = 2 TP_k / (2 TP_k + FP_k + FN_k), support_k = TP_k + FN_k;
- a ratio whose denominator is 0 is 0.0 (scikit-learn's ``zero_division=0``);
- macro = the plain mean over all K labels (a label never seen still counts,
  as 0), weighted = the mean weighted by support;
- confusion_matrix[i][j] = how many examples of true class i were predicted j.

Multi-label (K independent yes/no decisions per example): the same per label,
micro = from TP, FP, FN summed over labels, subset accuracy = the share of
examples whose every label is right, hamming loss = the share of wrong decisions.

Every number in a report is a plain Python int or float, so ``json.dumps``
takes a report as it is. Shapes: N examples, K labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from rnnkit.errors import InputError

LABEL_WIDTH = 24  # report rows: longer names are shortened in the middle
MATRIX_LABEL_WIDTH = 10  # confusion-matrix column headers
MATRIX_MAX_CLASSES = 40  # more classes than this: the text report points to the JSON / PNG instead
ANNOTATE_MAX_CLASSES = 30  # the PNG writes counts in cells up to this many classes


# --------------------------------------------------------------------------- reports


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro and weighted averages, confusion matrix.

    Args:
        y_true, y_pred: (N,) class ids in [0, K).
        labels: the K class names, in id order.

    Returns:
        {"count", "accuracy", "per_class": {label: {"precision", "recall", "f1", "support"}},
         "macro_precision", "macro_recall", "macro_f1", "weighted_f1",
         "labels", "confusion_matrix": K lists of K ints (rows true, columns predicted)}.
    """
    labels = _check_labels(labels)
    k = len(labels)
    y_true, y_pred = _check_ids(y_true, "y_true", k), _check_ids(y_pred, "y_pred", k)
    if y_true.shape != y_pred.shape:
        raise InputError(f"y_true and y_pred must have the same length; got {len(y_true)} and {len(y_pred)}")
    if len(y_true) == 0:
        raise InputError("no examples to score; a report needs at least one")
    matrix = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)  # (K true, K predicted)
    tp = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision, recall, f1 = _prf(tp, predicted - tp, support - tp)
    return {
        "count": int(len(y_true)),
        "accuracy": float(tp.sum() / len(y_true)),
        "per_class": {label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                              "support": int(support[i])} for i, label in enumerate(labels)},
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "weighted_f1": float(_ratio((f1 * support).sum(), support.sum())),
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
    }


def multi_label_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict:
    """Per-label precision/recall/F1/support, micro and macro averages, subset accuracy and hamming loss.

    Args:
        y_true, y_pred: (N, K) booleans (or 0/1): example n has label k.
        labels: the K label names, in column order.

    Returns:
        {"count", "per_label": {label: {"precision", "recall", "f1", "support"}},
         "micro_precision", "micro_recall", "micro_f1", "macro_precision", "macro_recall", "macro_f1",
         "subset_accuracy", "hamming_loss", "labels"}.
    """
    labels = _check_labels(labels)
    y_true, y_pred = _check_indicator(y_true, "y_true", len(labels)), _check_indicator(y_pred, "y_pred", len(labels))
    if y_true.shape != y_pred.shape:
        raise InputError(f"y_true and y_pred must have the same shape; got {y_true.shape} and {y_pred.shape}")
    if len(y_true) == 0:
        raise InputError("no examples to score; a report needs at least one")
    tp = (y_true & y_pred).sum(axis=0)  # (K,)
    fp = (~y_true & y_pred).sum(axis=0)
    fn = (y_true & ~y_pred).sum(axis=0)
    precision, recall, f1 = _prf(tp, fp, fn)
    micro_p, micro_r, micro_f1 = (float(v) for v in _prf(tp.sum(), fp.sum(), fn.sum()))
    return {
        "count": int(len(y_true)),
        "per_label": {label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                              "support": int(tp[i] + fn[i])} for i, label in enumerate(labels)},
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": micro_f1,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "subset_accuracy": float((y_true == y_pred).all(axis=1).mean()),
        "hamming_loss": float((y_true != y_pred).mean()),
        "labels": list(labels),
    }


def _prf(tp, fp, fn):
    """(precision, recall, f1) from counts, element-wise; 0.0 where a denominator is 0."""
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def _ratio(num, den):
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _check_labels(labels: Sequence[str]) -> list[str]:
    labels = [str(label) for label in labels]
    if not labels:
        raise InputError("a report needs at least one label name")
    if len(set(labels)) != len(labels):
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        raise InputError(f"label names must be distinct; repeated: {', '.join(map(repr, repeated))}")
    return labels


def _check_ids(values, name: str, k: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise InputError(f"{name} must be (N,) class ids; got shape {values.shape}")
    if values.size and not np.issubdtype(values.dtype, np.integer):
        if not np.issubdtype(values.dtype, np.floating) or not np.all(values == np.round(values)):
            raise InputError(f"{name} must hold integer class ids; got dtype {values.dtype}")
    values = values.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() >= k):
        raise InputError(f"{name} holds class ids outside [0, {k}) for {k} labels "
                         f"(min {values.min()}, max {values.max()})")
    return values


def _check_indicator(values, name: str, k: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[1] != k:
        raise InputError(f"{name} must be (N, {k}) booleans for {k} labels; got shape {values.shape}")
    if values.dtype != bool:
        if values.size and not np.isin(values, (0, 1)).all():
            raise InputError(f"{name} must hold booleans or 0/1; threshold the probabilities first")
        values = values.astype(bool)
    return values


# --------------------------------------------------------------------------- text


def format_report(report: dict) -> str:
    """A report from `classification_report` or `multi_label_report` as a plain-text table.

    Rows per class (precision, recall, F1, support), then the averages; for a
    single-label report also accuracy and the confusion matrix (rows true,
    columns predicted). Long names are shortened in the middle ("customer…ing").
    """
    multi = "per_label" in report
    rows = report["per_label"] if multi else report["per_class"]
    width = max(12, min(LABEL_WIDTH, max(len(label) for label in rows)))
    line = f"{{:<{width}}}  {{:>9}}  {{:>9}}  {{:>9}}  {{:>9}}"
    out = [line.format("label" if multi else "class", "precision", "recall", "f1", "support")]
    for label, row in rows.items():
        out.append(line.format(_short(label, width), f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                               f"{row['f1']:.3f}", row["support"]))
    out.append("")
    n = report["count"]
    if multi:
        n = sum(row["support"] for row in rows.values())  # label occurrences, as the rows above count
        out.append(line.format("micro avg", f"{report['micro_precision']:.3f}", f"{report['micro_recall']:.3f}",
                               f"{report['micro_f1']:.3f}", n))
        out.append(line.format("macro avg", f"{report['macro_precision']:.3f}", f"{report['macro_recall']:.3f}",
                               f"{report['macro_f1']:.3f}", n))
        out.append(f"subset accuracy {report['subset_accuracy']:.4f}   hamming loss {report['hamming_loss']:.4f}"
                   f"   ({report['count']} examples)")
        return "\n".join(out)
    out.append(line.format("macro avg", f"{report['macro_precision']:.3f}", f"{report['macro_recall']:.3f}",
                           f"{report['macro_f1']:.3f}", n))
    out.append(line.format("weighted avg", "", "", f"{report['weighted_f1']:.3f}", n))
    out.append(line.format("accuracy", "", "", f"{report['accuracy']:.4f}", n))
    out.append("")
    out.extend(_format_matrix(report["confusion_matrix"], list(report["per_class"])))
    return "\n".join(out)


def _format_matrix(matrix: list[list[int]], labels: list[str]) -> list[str]:
    if len(labels) > MATRIX_MAX_CLASSES:
        return [f"confusion matrix: {len(labels)} classes, too many to print; see confusion_matrix in the JSON "
                "report or the PNG"]
    digits = max(len(str(v)) for row in matrix for v in row)
    cell = max(digits, min(MATRIX_LABEL_WIDTH, max(len(label) for label in labels)))
    corner = "true \\ predicted"
    first = max(len(corner), min(LABEL_WIDTH, max(len(label) for label in labels)))
    out = ["confusion matrix (rows: true class, columns: predicted class)",
           f"{corner:<{first}}  " + " ".join(f"{_short(label, cell):>{cell}}" for label in labels)]
    for label, row in zip(labels, matrix):
        out.append(f"{_short(label, first):<{first}}  " + " ".join(f"{v:>{cell}}" for v in row))
    return out


def _short(name: str, width: int) -> str:
    """`name` in at most `width` characters: the start and the end kept, "…" between (one line)."""
    name = " ".join(str(name).split())
    if len(name) <= width:
        return name
    if width <= 1:
        return name[:width]
    head = width // 2
    tail = width - 1 - head
    return name[:head] + "…" + (name[-tail:] if tail else "")


# --------------------------------------------------------------------------- plot


def plot_confusion_matrix(matrix, labels: Sequence[str], path: str | Path) -> Path:
    """Save a (K, K) confusion matrix (rows true, columns predicted) as a PNG heat map; returns the path.

    Each cell shows its count (up to 30 classes); the colour is the share of
    its row (the recall view), so small classes stay readable. The file is
    written atomically. Drawn on a figure of its own (no pyplot), so the
    caller's matplotlib backend and figures are never touched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rnnkit.fileio import WRITTEN_BY, atomic_path

    matrix = np.asarray(matrix)
    labels = _check_labels(labels)
    k = len(labels)
    if matrix.shape != (k, k):
        raise InputError(f"a confusion matrix for {k} labels must be ({k}, {k}); got shape {matrix.shape}")
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = max(4.0, 0.45 * k + 2.5)
    fig = Figure(figsize=(size + 1.0, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    names = [_short(label, 18) for label in labels]
    ax.set_xticks(range(k), names, rotation=90 if k > 6 else 45, ha="right" if k <= 6 else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= ANNOTATE_MAX_CLASSES:
        font = 9 if k <= 12 else 7
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=font,
                        color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": WRITTEN_BY})
    return path


# --------------------------------------------------------------------------- mistakes


def worst_mistakes(probabilities, y_true, k: int) -> list[int]:
    """Indices of the (at most) `k` most confident wrong predictions, worst first.

    Args:
        probabilities: (N, K) class probabilities, or (N,) the probability of class 1 (a sigmoid).
        y_true: (N,) true class ids.
        k: how many to return.

    An example is wrong when its most probable class is not its true class;
    the worst has the highest probability on that wrong class (ties: the
    lowest probability on the true class, then the lowest index).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim == 1:
        probabilities = np.stack([1.0 - probabilities, probabilities], axis=1)
    if probabilities.ndim != 2:
        raise InputError(f"probabilities must be (N, K) or (N,); got shape {probabilities.shape}")
    y_true = _check_ids(y_true, "y_true", probabilities.shape[1])
    if len(y_true) != len(probabilities):
        raise InputError(f"y_true has {len(y_true)} entries for {len(probabilities)} rows of probabilities")
    if k <= 0 or len(y_true) == 0:
        return []
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    confidence = probabilities[wrong, predicted[wrong]]
    on_truth = probabilities[wrong, y_true[wrong]]
    order = np.lexsort((wrong, on_truth, -confidence))  # last key first: confidence, then truth, then index
    return [int(i) for i in wrong[order[:k]]]


__all__ = ["classification_report", "multi_label_report", "format_report", "plot_confusion_matrix",
           "worst_mistakes"]

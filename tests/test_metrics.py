"""rnnkit.metrics: reports checked against scikit-learn, the text table, the PNG, worst mistakes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.errors import InputError
from rnnkit.metrics import (classification_report, format_report, multi_label_report, plot_confusion_matrix,
                            worst_mistakes)


@st.composite
def single_label_arrays(draw):
    k = draw(st.integers(1, 6))
    n = draw(st.integers(1, 60))
    ids = st.lists(st.integers(0, k - 1), min_size=n, max_size=n)
    return np.array(draw(ids)), np.array(draw(ids)), k


@st.composite
def multi_label_arrays(draw):
    k = draw(st.integers(2, 5))  # scikit-learn reads a single column as binary targets, not one label
    n = draw(st.integers(1, 40))
    bits = st.lists(st.booleans(), min_size=n * k, max_size=n * k)
    return np.array(draw(bits)).reshape(n, k), np.array(draw(bits)).reshape(n, k), k


def check_against_sklearn(y_true, y_pred, k):
    metrics = pytest.importorskip("sklearn.metrics")
    labels = [f"c{i}" for i in range(k)]
    report = classification_report(y_true, y_pred, labels)
    ids = list(range(k))
    p, r, f, s = metrics.precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    assert report["accuracy"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    for i, label in enumerate(labels):
        row = report["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f[i]))
        assert row["support"] == s[i]
    for average in ("macro", "weighted"):
        assert report[f"{average}_f1"] == pytest.approx(
            metrics.f1_score(y_true, y_pred, labels=ids, average=average, zero_division=0))
    assert report["macro_precision"] == pytest.approx(
        metrics.precision_score(y_true, y_pred, labels=ids, average="macro", zero_division=0))
    assert report["macro_recall"] == pytest.approx(
        metrics.recall_score(y_true, y_pred, labels=ids, average="macro", zero_division=0))
    assert report["confusion_matrix"] == metrics.confusion_matrix(y_true, y_pred, labels=ids).tolist()
    assert report["count"] == len(y_true)


def test_classification_report_matches_sklearn_on_a_fixed_example():
    y_true = np.array([0, 0, 1, 1, 1, 2, 2, 3, 0, 1])
    y_pred = np.array([0, 1, 1, 1, 2, 2, 0, 0, 0, 1])  # class 3 never predicted: precision 0, not NaN
    check_against_sklearn(y_true, y_pred, 5)  # class 4 never seen at all: counts 0 in the macro mean
    report = classification_report(y_true, y_pred, ["a", "b", "c", "d", "e"])
    assert report["accuracy"] == pytest.approx(0.6)
    assert report["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report["confusion_matrix"][1] == [0, 3, 1, 0, 0]  # row = true class b
    json.dumps(report)  # plain Python numbers only


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")  # sklearn's, on the cases we want
@settings(max_examples=60, deadline=None)
@given(single_label_arrays())
def test_classification_report_matches_sklearn(arrays):
    check_against_sklearn(*arrays)


@settings(max_examples=60, deadline=None)
@given(multi_label_arrays())
def test_multi_label_report_matches_sklearn(arrays):
    metrics = pytest.importorskip("sklearn.metrics")
    y_true, y_pred, k = arrays
    labels = [f"t{i}" for i in range(k)]
    report = multi_label_report(y_true, y_pred, labels)
    p, r, f, s = metrics.precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    for i, label in enumerate(labels):
        row = report["per_label"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[i], r[i], f[i], s[i]))
    for average in ("micro", "macro"):
        assert report[f"{average}_f1"] == pytest.approx(metrics.f1_score(y_true, y_pred, average=average,
                                                                          zero_division=0))
        assert report[f"{average}_precision"] == pytest.approx(
            metrics.precision_score(y_true, y_pred, average=average, zero_division=0))
        assert report[f"{average}_recall"] == pytest.approx(
            metrics.recall_score(y_true, y_pred, average=average, zero_division=0))
    assert report["subset_accuracy"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert report["hamming_loss"] == pytest.approx(metrics.hamming_loss(y_true, y_pred))
    json.dumps(report)


def test_multi_label_report_by_hand_and_accepts_zero_one():
    report = multi_label_report([[1, 0, 1], [0, 1, 1]], [[1, 1, 0], [0, 1, 1]], ["a", "b", "c"])
    assert report["subset_accuracy"] == 0.5
    assert report["hamming_loss"] == pytest.approx(2 / 6)
    assert report["micro_f1"] == pytest.approx(0.75)  # tp 3, fp 1, fn 1
    assert report["per_label"]["c"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}


@pytest.mark.parametrize("call, match", [
    (lambda: classification_report([0, 1], [0], ["a", "b"]), "same length"),
    (lambda: classification_report([0, 2], [0, 1], ["a", "b"]), r"outside \[0, 2\)"),
    (lambda: classification_report([0, -1], [0, 1], ["a", "b"]), "outside"),
    (lambda: classification_report([[0, 1]], [[0, 1]], ["a", "b"]), r"\(N,\)"),
    (lambda: classification_report([0.5], [0], ["a", "b"]), "integer"),
    (lambda: classification_report([], [], ["a", "b"]), "no examples"),
    (lambda: classification_report([0], [0], ["a", "a"]), "distinct"),
    (lambda: classification_report([0], [0], []), "at least one label"),
    (lambda: multi_label_report([[1, 0]], [[1, 0, 0]], ["a", "b"]), r"\(N, 2\)"),
    (lambda: multi_label_report([[0.7, 0]], [[1, 0]], ["a", "b"]), "threshold"),
    (lambda: multi_label_report(np.zeros((1, 2), bool), np.zeros((2, 2), bool), ["a", "b"]), "same shape"),
    (lambda: worst_mistakes(np.zeros((2, 2, 2)), [0, 1], 1), r"\(N, K\)"),
    (lambda: worst_mistakes(np.zeros((2, 2)), [0, 1, 1], 1), "3 entries"),
])
def test_bad_arguments_are_input_errors(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_format_report_single_label():
    labels = ["billing", "a_very_long_label_name_for_technical_support", "sales"]
    report = classification_report([0, 1, 2, 2, 1], [0, 2, 2, 2, 1], labels)
    text = format_report(report)
    lines = text.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert any(line.startswith("billing") and line.split()[1:] == ["1.000", "1.000", "1.000", "1"] for line in lines)
    assert "a_very_long_…cal_support" in text  # shortened in the middle: both ends stay
    assert all(len(line) < 100 for line in lines)
    assert any(line.startswith("macro avg") for line in lines)
    assert any(line.startswith("weighted avg") for line in lines)
    assert any(line.startswith("accuracy") and "0.8000" in line for line in lines)
    header = lines.index("confusion matrix (rows: true class, columns: predicted class)")
    assert lines[header + 1].split()[-1] == "sales"
    assert lines[header + 2].split() == ["billing", "1", "0", "0"]
    assert lines[header + 4].split() == ["sales", "0", "0", "2"]


def test_format_report_many_classes_points_to_json():
    k = 50
    report = classification_report(np.arange(k), np.arange(k), [f"class{i}" for i in range(k)])
    text = format_report(report)
    assert "50 classes, too many to print" in text
    assert "class49" in text


def test_format_report_multi_label():
    report = multi_label_report([[1, 0], [1, 1]], [[1, 0], [0, 1]], ["urgent", "billing"])
    text = format_report(report)
    assert text.splitlines()[0].split()[0] == "label"
    assert "micro avg" in text and "macro avg" in text
    assert "subset accuracy 0.5000" in text and "hamming loss 0.2500" in text
    assert "confusion matrix" not in text


def test_plot_confusion_matrix_writes_a_png_without_touching_the_backend(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    backend = matplotlib.get_backend()
    matrix = [[5, 1, 0], [2, 7, 1], [0, 0, 0]]  # an empty row (no support) must not divide by zero
    path = plot_confusion_matrix(matrix, ["neg", "neutral", "pos"], tmp_path / "plots" / "confusion.png")
    assert path == tmp_path / "plots" / "confusion.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["confusion.png"]  # no temporary file left
    assert matplotlib.get_backend() == backend
    with pytest.raises(InputError, match=r"\(2, 2\)"):
        plot_confusion_matrix(matrix, ["a", "b"], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_plot_confusion_matrix_many_long_labels(tmp_path):
    k = 35
    matrix = np.eye(k, dtype=int) * 3
    path = plot_confusion_matrix(matrix, [f"label number {i} with a long name" for i in range(k)], tmp_path / "m.png")
    assert path.stat().st_size > 1000


def test_worst_mistakes_by_hand():
    probabilities = np.array([[0.9, 0.1],    # right
                              [0.2, 0.8],    # wrong (true 0), confidence 0.8
                              [0.05, 0.95],  # wrong, 0.95: the worst
                              [0.4, 0.6],    # wrong, 0.6
                              [0.3, 0.7]])   # right
    y_true = [0, 0, 0, 0, 1]
    assert worst_mistakes(probabilities, y_true, 2) == [2, 1]
    assert worst_mistakes(probabilities, y_true, 10) == [2, 1, 3]
    assert worst_mistakes(probabilities, y_true, 0) == []
    assert worst_mistakes(probabilities[:, 1], y_true, 3) == [2, 1, 3]  # (N,) sigmoid probabilities
    assert worst_mistakes(probabilities, [0, 1, 1, 1, 1], 3) == []  # nothing wrong


def test_worst_mistakes_ties_prefer_less_probability_on_the_truth():
    probabilities = np.array([[0.5, 0.1, 0.4], [0.5, 0.3, 0.2], [0.5, 0.3, 0.2]])
    assert worst_mistakes(probabilities, [2, 1, 2], 3) == [2, 1, 0]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(2, 5), st.integers(0, 2**31 - 1), st.integers(0, 40))
def test_worst_mistakes_properties(n, k, seed, top):
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(k), size=n)
    y_true = rng.integers(0, k, size=n)
    picked = worst_mistakes(probabilities, y_true, top)
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != y_true)
    assert len(picked) == min(top, len(wrong))
    assert set(picked) <= set(wrong.tolist())
    confidence = probabilities.max(axis=1)[picked]
    assert np.all(np.diff(confidence) <= 0)
    if picked and len(picked) < len(wrong):
        assert confidence[-1] >= probabilities.max(axis=1)[np.setdiff1d(wrong, picked)].max()

"""rnnkit.data.labelled: every format, every bad input, class counts, weights and the stratified split."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.labelled import (LabelledTexts, class_counts, class_weights, imbalance_warning, label_warnings,
                                  read_labelled, read_splits, stratified_split)
from rnnkit.errors import ConfigError, DataError


def write(path, data: bytes | str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def error(call, *args, **kwargs) -> str:
    """The message of the DataError that `call` raises; every message is one line."""
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- CSV / TSV


def test_csv_with_bom_crlf_and_quoted_newlines(tmp_path):
    path = write(tmp_path / "tickets.csv",
                 b'\xef\xbb\xbfid,Text,Label\r\n'
                 b'1,"The app crashes,\r\nevery time I log in",bug\r\n'
                 b'2,"Please ""refund"" me",billing\r\n'
                 b'3, How do I export? , question \r\n')
    data = read_labelled(path)
    assert data.texts == ["The app crashes,\nevery time I log in", 'Please "refund" me', "How do I export?"]
    assert data.labels == ["bug", "billing", "question"]
    assert (data.text_field, data.label_field) == ("Text", "Label")  # found by name, case-insensitive, BOM gone
    assert data.source == str(path) and data.skipped == {} and len(data) == 3
    assert data.classes == ["billing", "bug", "question"] and not data.multi_label


def test_semicolon_csv_with_commas_in_the_text(tmp_path):
    path = write(tmp_path / "reviews.csv",
                 "review;sentiment\ngreat, really great;pos\nbad, bad, bad;neg\n\"a; b\";neg\nfine, I guess;pos\n")
    data = read_labelled(path)
    assert data.texts == ["great, really great", "bad, bad, bad", "a; b", "fine, I guess"]
    assert data.labels == ["pos", "neg", "neg", "pos"]


@pytest.mark.parametrize("name", ["data.tsv", "data.txt", "data"])
def test_tsv_by_suffix_or_by_sniffing(tmp_path, name):
    path = write(tmp_path / name, "sentence\tintent\nbook a table, please\tbooking\nwhat's the weather?\tweather\n")
    data = read_labelled(path)
    assert data.texts == ["book a table, please", "what's the weather?"]
    assert data.labels == ["booking", "weather"]


def test_pipe_delimited(tmp_path):
    path = write(tmp_path / "d.csv", "message|topic\nhi, there|greeting\nbye|farewell\n")
    assert read_labelled(path).labels == ["greeting", "farewell"]


def test_given_fields_and_extra_columns(tmp_path):
    path = write(tmp_path / "d.csv", "title,body,stars,label\nt1,nice,5,x\nt2,awful,1,x\n")
    data = read_labelled(path, text_field="title", label_field="STARS")  # given names: exact, else any case
    assert data.texts == ["t1", "t2"] and data.labels == ["5", "1"]
    assert (data.text_field, data.label_field) == ("title", "stars")


def test_empty_rows_are_skipped_and_counted(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\ngood,pos\n,neg\n   ,neg\nbad,\nmeh, \n\nworse,neg\n,\n")
    data = read_labelled(path)
    assert data.texts == ["good", "worse"]
    assert data.skipped == {"empty text": 3, "empty label": 2}


def test_a_long_field_is_read(tmp_path):
    long_text = "word " * 60_000  # 300 kB: over the csv module's default field limit
    path = write(tmp_path / "d.csv", f'text,label\n"{long_text}",a\nshort,b\n')
    assert read_labelled(path).texts[0] == long_text.strip()
    assert csv.field_size_limit() == 131072  # the global limit is restored


def test_ragged_row_names_its_line(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\n"two\nlines",a\nok,b\none,two,three\n')
    message = error(read_labelled, path)
    assert "line 5" in message and "3 field(s)" in message and "header has 2" in message


def test_bad_quoting_names_its_line(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\nok,a\n"bad"quote,b\n')
    assert "line 3" in error(read_labelled, path)


def test_missing_columns_list_what_was_found(tmp_path):
    path = write(tmp_path / "d.csv", "id,words,kind\n1,hello,a\n2,bye,b\n")
    message = error(read_labelled, path)
    assert "'id', 'words', 'kind'" in message and "--text-field" in message
    message = error(read_labelled, path, text_field="words")
    assert "--label-field" in message and "'kind'" in message
    message = error(read_labelled, path, text_field="words", label_field="nope")
    assert "'nope'" in message and "'id', 'words', 'kind'" in message
    assert "same column" in error(read_labelled, path, text_field="words", label_field="words")


def test_header_only_one_column_and_only_empty_rows(tmp_path):
    assert "no usable rows" in error(read_labelled, write(tmp_path / "a.csv", "text,label\n"))
    assert "1 column(s)" in error(read_labelled, write(tmp_path / "b.csv", "text\nhello\n"))
    message = error(read_labelled, write(tmp_path / "c.csv", "text,label\n,a\nb,\n"))
    assert "no usable rows" in message and "1 with empty text" in message and "1 with empty label" in message


def test_one_class_only(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\ngood,pos\nfine,pos\n")
    message = error(read_labelled, path)
    assert "only one label ('pos')" in message and "at least 2 classes" in message and "--label-field" in message


def test_non_utf8_names_line_and_offset(tmp_path):
    path = write(tmp_path / "d.csv", b"text,label\ngood,pos\ncaf\xe9 au lait,neg\n")
    message = error(read_labelled, path)
    assert str(path) in message and "line 3" in message and "byte offset 23" in message and "iconv" in message


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"  \n\n", "is empty"),
    (b"\xff\xfet\x00e\x00x\x00t\x00", "UTF-16"),
    (b"\x1f\x8b\x08\x00rest", "compressed"),
    (b"PK\x03\x04rest", "zip"),
    (b"text,label\nab\x00c,d\n", "NUL byte"),
])
def test_files_that_are_not_text(tmp_path, content, match):
    assert match in error(read_labelled, write(tmp_path / "d.csv", content))


def test_multi_label_csv(tmp_path):
    path = write(tmp_path / "d.csv", "text,tags\nt1,urgent| billing\nt2,billing||\nt3, | \nt4,bug|bug|urgent\n")
    data = read_labelled(path, multi_label="|")
    assert data.labels == [("urgent", "billing"), ("billing",), ("bug", "urgent")]
    assert data.skipped == {"empty label": 1} and data.multi_label
    assert data.classes == ["billing", "bug", "urgent"]
    with pytest.raises(ConfigError):
        read_labelled(path, multi_label=" ")


# --------------------------------------------------------------------------- JSON lines


def test_jsonl_with_numbers_booleans_and_blank_lines(tmp_path):
    lines = [{"body": "great", "stars": 5}, {"body": "bad", "stars": 1}, {"body": "ok", "stars": 3.5},
             {"body": "yes", "stars": True}, {"body": "none", "stars": None}, {"stars": 2}]
    path = write(tmp_path / "r.jsonl", "\n".join(json.dumps(x) for x in lines[:3]) + "\n\n  \n"
                 + "\n".join(json.dumps(x) for x in lines[3:]) + "\n")
    data = read_labelled(path)
    assert data.texts == ["great", "bad", "ok", "yes"]
    assert data.labels == ["5", "1", "3.5", "true"]
    assert data.skipped == {"empty label": 1, "empty text": 1}
    assert (data.text_field, data.label_field) == ("body", "stars")


def test_jsonl_is_sniffed_without_a_suffix(tmp_path):
    path = write(tmp_path / "data.txt", '\ufeff{"text": "a", "label": "x"}\r\n{"text": "b", "label": "y"}\r\n')
    assert read_labelled(path).labels == ["x", "y"]


@pytest.mark.parametrize("line, match", [
    ('{"text": "b", "label": ', "not valid JSON"),
    ('["b", "y"]', "a JSON list, not an object"),
    ('{"text": "b", "label": NaN}', "not valid JSON"),
    ('{"text": {"x": 1}, "label": "y"}', "JSON dict"),
    ('{"text": "b", "label": ["y", "z"]}', "--multi-label"),
])
def test_jsonl_bad_line_is_named(tmp_path, line, match):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n\n' + line + "\n")
    message = error(read_labelled, path)
    assert "line 3" in message and match in message


def test_jsonl_missing_keys_and_non_utf8(tmp_path):
    path = write(tmp_path / "d.ndjson", '{"id": 1, "words": "a", "label": "x"}\n')
    message = error(read_labelled, path)
    assert "'id', 'words', 'label'" in message and "--text-field" in message
    path = write(tmp_path / "e.jsonl", b'{"text": "a", "label": "x"}\n{"text": "\xff", "label": "y"}\n')
    message = error(read_labelled, path)
    assert "line 2" in message and "iconv" in message


def test_json_array_file_is_refused_with_the_fix(tmp_path):
    path = write(tmp_path / "d.json", '[{"text": "a", "label": "x"}]')
    assert "jq -c" in error(read_labelled, path)


def test_jsonl_multi_label_lists_and_strings(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "tags": ["x", " y ", "", "x"]}\n'
                                       '{"text": "b", "tags": "y,z"}\n{"text": "c", "tags": []}\n')
    data = read_labelled(path, multi_label=",")
    assert data.labels == [("x", "y"), ("y", "z")] and data.skipped == {"empty label": 1}


# --------------------------------------------------------------------------- folder of class folders


def test_folder_of_class_folders(tmp_path):
    root = tmp_path / "corpus"
    write(root / "pos" / "1.txt", "Loved it.\n")
    write(root / "pos" / "2", b"\xef\xbb\xbfGreat film")  # any name, BOM removed
    write(root / "neg" / "1.txt", "Dull.")
    write(root / "neg" / "empty.txt", "  \n")
    write(root / "neg" / ".DS_Store", b"\x00\x01")
    write(root / "neg" / "cover.png", b"\x89PNG....")
    write(root / "neg" / "blob.dat", b"abc\x00def")
    write(root / "README.md", "not a class")
    (root / "neg" / "nested").mkdir()
    (root / ".git").mkdir()
    data = read_labelled(root)
    assert sorted(zip(data.labels, data.texts)) == [("neg", "Dull."), ("pos", "Great film"), ("pos", "Loved it.")]
    assert data.skipped == {"hidden file": 1, "non-text file": 2, "empty text": 1,
                            "folder inside a class folder": 1, "file outside a class folder": 1}
    assert data.label_field == "folder names"


def test_folder_errors(tmp_path):
    flat = tmp_path / "flat"
    write(flat / "a.txt", "x")
    assert "<label>" in error(read_labelled, flat)
    one = tmp_path / "one"
    write(one / "pos" / "a.txt", "x")
    assert "add a subfolder per class" in error(read_labelled, one)
    bad = tmp_path / "bad"
    write(bad / "pos" / "a.txt", "x")
    write(bad / "neg" / "b.txt", b"line one\ncaf\xe9")
    message = error(read_labelled, bad)
    assert "b.txt" in message and "line 2" in message and "iconv" in message
    assert "limit" in error(read_labelled, one, max_bytes=0)
    os.mkfifo(one / "pos" / "pipe")
    write(one / "neg" / "b.txt", "y")
    assert read_labelled(one).skipped == {"not a regular file": 1}


# --------------------------------------------------------------------------- what is read at all


def test_missing_path_fifo_device_and_directory(tmp_path):
    assert "does not exist" in error(read_labelled, tmp_path / "nope.csv")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    assert "not a regular file" in error(read_labelled, fifo)  # and it does not block waiting for a writer
    if os.path.exists("/dev/zero"):
        assert "not a regular file" in error(read_labelled, "/dev/zero")
    (tmp_path / "data.csv").mkdir()
    assert "directory where a .csv file is expected" in error(read_labelled, tmp_path / "data.csv")


def test_size_limit_is_checked_before_reading(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,x\nb,y\n")
    message = error(read_labelled, path, max_bytes=10)
    assert "19 bytes" in message and "10-byte limit" in message
    assert len(read_labelled(path, max_bytes=19)) == 2


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    path = write(tmp_path / "d.csv", "text,label\n" + "".join(f"text {i},{i % 3}\n" for i in range(2000)))
    assert len(read_labelled(path, progress=True)) == 2000
    captured = capsys.readouterr()
    assert "reading d.csv" in captured.err and captured.out == ""


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet='ab é,;|\t"\n\r\'x', min_size=1, max_size=30),
                          st.sampled_from(["spam", "ham", "eggs"])), min_size=2, max_size=20))
def test_csv_round_trip(tmp_path_factory, rows):
    """Whatever csv.writer writes (quotes, delimiters, newlines in texts) reads back."""
    path = tmp_path_factory.mktemp("rt") / "d.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    kept = [(t.replace("\r\n", "\n").strip(), label) for t, label in rows if t.strip()]
    if len({label for _, label in kept}) < 2:
        with pytest.raises(DataError):
            read_labelled(path)
        return
    data = read_labelled(path)
    assert list(zip(data.texts, data.labels)) == kept


# --------------------------------------------------------------------------- splits


def test_read_splits(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,x\nb,y\nc,z\n")
    valid = write(tmp_path / "valid.tsv", "text\tlabel\nd\tx\ne\ty\n")
    test = write(tmp_path / "test.jsonl", '{"text": "f", "label": "z"}\n{"text": "g", "label": "x"}\n')
    splits = read_splits(train, valid, test)
    assert list(splits) == ["train", "valid", "test"]
    assert splits["test"].labels == ["z", "x"]
    assert list(read_splits(train, test=test)) == ["train", "test"]
    unseen = write(tmp_path / "unseen.csv", "text,label\nd,x\ne,w\nf,v\n")
    message = error(read_splits, train, valid=unseen)
    assert "'v', 'w'" in message and "valid" in message and str(train) in message


def test_stratified_split_many_classes():
    labels = [f"c{i}" for i in range(20) for _ in range(i + 1)] + ["single"]  # classes of 1..20 examples
    train, val = stratified_split(labels, 0.2, np.random.default_rng(0))
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    assert len(val) == round(len(labels) * 0.2)
    train_counts, val_counts, all_counts = (Counter(labels[i] for i in idx) for idx in (train, val, range(len(labels))))
    for label, n in all_counts.items():
        assert train_counts[label] >= 1  # every class (a single example included) is in training
        assert abs(val_counts[label] - 0.2 * n) < 1.0 + 1e-9  # in proportion, to within one example
    again = stratified_split(labels, 0.2, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again))
    assert train.dtype == np.int64


def test_stratified_split_small_classes_still_give_a_validation_set():
    labels = ["a", "a", "b", "b", "c", "c"]  # 0.1 * 2 rounds to 0 in every class
    train, val = stratified_split(labels, 0.1, 3)  # a seed works too
    assert len(val) == 1 and len(train) == 5


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from("abcdefg"), min_size=2, max_size=80), st.floats(0.05, 0.95), st.integers(0, 99))
def test_stratified_split_properties(labels, fraction, seed):
    counts = Counter(labels)
    if all(n == 1 for n in counts.values()):
        with pytest.raises(DataError, match="single example"):
            stratified_split(labels, fraction, np.random.default_rng(seed))
        return
    train, val = stratified_split(labels, fraction, np.random.default_rng(seed))
    assert sorted(train.tolist() + val.tolist()) == list(range(len(labels)))
    assert len(val) >= 1
    in_train = Counter(labels[i] for i in train)
    assert all(in_train[label] >= 1 for label in counts)


def test_stratified_split_multi_label_and_bad_arguments():
    labels = [("a",), ("a", "b"), ("b",), ("c",)] * 5
    train, val = stratified_split(labels, 0.25, np.random.default_rng(1))
    assert len(val) == 5 and len(train) == 15
    assert np.array_equal(val, stratified_split(labels, 0.25, np.random.default_rng(1))[1])
    for fraction in (0.0, 1.0, -0.5, float("nan")):
        with pytest.raises(ConfigError):
            stratified_split(["a", "b", "a", "b"], fraction, np.random.default_rng(0))
    with pytest.raises(DataError, match="single example"):
        stratified_split(["a", "b", "c"], 0.3, np.random.default_rng(0))
    with pytest.raises(DataError):
        stratified_split(["a"], 0.3, np.random.default_rng(0))


def test_subset():
    data = LabelledTexts(["a", "b", "c"], ["x", "y", "x"], "src", {"empty text": 1}, "text", "label")
    part = data.subset(np.array([2, 0]))
    assert part.texts == ["c", "a"] and part.labels == ["x", "x"] and part.source == "src"


# --------------------------------------------------------------------------- classes


def test_class_counts_sorted_by_count_then_name():
    assert list(class_counts(["b", "a", "c", "a", "c", "a"]).items()) == [("a", 3), ("c", 2), ("b", 1)]
    assert class_counts([("x", "y"), ("y",)]) == {"y": 2, "x": 1}


def test_imbalance_warning():
    assert imbalance_warning({"a": 90, "b": 10}) is None
    message = imbalance_warning({"big": 500, "mid": 60, "tiny": 5})
    assert "'big'" in message and "'tiny'" in message and "100x" in message
    assert "--class-weights balanced" in message
    assert imbalance_warning({"a": 100}) is None
    assert imbalance_warning({"a": 10, "b": 2}, ratio=5) is not None


def test_class_weights_balanced_as_sklearn():
    utils = pytest.importorskip("sklearn.utils")
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 5
    order = ["c", "a", "b"]
    expected = utils.compute_class_weight("balanced", classes=np.array(order), y=np.array(labels))
    weights = class_weights(class_counts(labels), order)
    assert weights.dtype == np.float32 and weights.shape == (3,)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    np.testing.assert_allclose(class_weights({"a": 4, "b": 4}, ["a", "b"]), [1.0, 1.0])
    assert "'z'" in error(class_weights, {"a": 1}, ["a", "z"])


def test_label_warnings():
    assert label_warnings(["pos", "neg"]) == []
    warnings = label_warnings(["Billing", "billing", "tech  support", "Tech support", "other"])
    assert len(warnings) == 2 and all("case or spacing" in w for w in warnings)
    (numeric,) = label_warnings(["1", "5", "10", "2"])
    assert "'1', '2', '5', '10'" in numeric and "class names" in numeric

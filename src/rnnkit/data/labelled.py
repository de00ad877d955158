"""Labelled texts a user brings: reading them, counting classes, splitting and weighting.

`read_labelled(path)` reads one data set, chosen by what `path` is:

- a folder of class subfolders, ``corpus/<label>/<any file>``: each regular
  file in a class folder is one text, its folder's name the label; hidden
  files and folders are skipped, and so are non-text files (a NUL byte or a
  binary suffix such as .png or .pdf; counted in ``skipped``);
- JSON lines (``.jsonl``, ``.ndjson``, or content that starts with ``{``):
  one object per line, blank lines skipped;
- CSV or TSV (anything else): a header row, then one text per row; the
  delimiter (one of ``, ; TAB |``) is sniffed from a sample; quoted fields may
  hold the delimiter and newlines; UTF-8 with or without a BOM; LF or CRLF.

The text and label columns are found by name when not given (see
`TEXT_FIELDS` and `LABEL_FIELDS`, case-insensitive). Labels are strings,
stripped: a JSON number or boolean becomes its JSON text (``5`` -> ``"5"``,
``true`` -> ``"true"``). With ``multi_label="|"`` the label field is split on
the separator into a tuple of tags (a JSON list is taken as the tags).

Files are streamed line by line (a progress bar over bytes with
``progress=True``), never read into one string. Anything unusable is a
`DataError` with a one-line message naming the file, the line and the fix:
a missing path, a FIFO or device, a file over `max_bytes`, non-UTF-8 bytes,
a CSV row with the wrong number of fields, a bad JSON line, a missing
column, no rows left, or fewer than two classes. A row with an empty text or
an empty label is skipped and counted in ``LabelledTexts.skipped``.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import os
import stat
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

import numpy as np

from rnnkit.errors import ConfigError, DataError
from rnnkit.fileio import open_regular_file

Label = str | tuple[str, ...]

DEFAULT_MAX_BYTES = 2 << 30  # 2 GiB: refuse larger inputs before reading a byte
TEXT_FIELDS = ("text", "review", "sentence", "content", "body", "message", "document", "comment")
LABEL_FIELDS = ("label", "labels", "class", "category", "target", "sentiment", "stars", "rating", "tag",
                "tags", "intent", "topic")
DELIMITERS = ",;\t|"
JSONL_SUFFIXES = (".jsonl", ".ndjson")
FILE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json", ".txt")
BINARY_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .bmp .webp .tif .tiff .ico .pdf .zip .gz .bz2 .xz .zst .tar .7z .rar .exe .dll .so "
    ".bin .pyc .o .a .class .jar .mp3 .wav .flac .ogg .mp4 .avi .mov .mkv .doc .docx .xls .xlsx .ppt .pptx "
    ".odt .safetensors .pt .npy .npz .pkl .sqlite .db".split())
SNIFF_BYTES = 64 << 10  # the sample csv.Sniffer looks at
PROGRESS_STEP = 1 << 20  # update the progress bar every MiB


@dataclass(frozen=True)
class LabelledTexts:
    """Texts and their labels, as read from one source.

    Attributes:
        texts: the texts, stripped, none empty.
        labels: one label per text: a string, or a tuple of tags (multi-label).
        source: what was read (a path), for messages.
        skipped: why rows were left out -> how many (e.g. ``{"empty text": 3}``).
        text_field: the column / key / "folder files" the texts came from.
        label_field: the column / key / "folder names" the labels came from.
    """

    texts: list[str]
    labels: list[Label]
    source: str
    skipped: dict[str, int] = field(default_factory=dict)
    text_field: str | None = None
    label_field: str | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def multi_label(self) -> bool:
        return bool(self.labels) and isinstance(self.labels[0], tuple)

    @property
    def classes(self) -> list[str]:
        """The distinct labels (tags, for multi-label), sorted."""
        return sorted(class_counts(self.labels))

    def subset(self, index: Iterable[int]) -> "LabelledTexts":
        """The rows at `index` (e.g. one side of `stratified_split`), same source and counts."""
        index = [int(i) for i in index]
        return LabelledTexts([self.texts[i] for i in index], [self.labels[i] for i in index], self.source,
                             dict(self.skipped), self.text_field, self.label_field)


# --------------------------------------------------------------------------- reading


def read_labelled(path: str | os.PathLike, text_field: str | None = None, label_field: str | None = None,
                  multi_label: str | None = None, progress: bool = False,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> LabelledTexts:
    """Read labelled texts from a CSV/TSV file, a JSON lines file or a folder of class subfolders.

    Args:
        path: the file or folder.
        text_field, label_field: column (CSV) or key (JSON) names; found by name when None.
            Not used for a folder.
        multi_label: a separator (e.g. "|") to read each label field as tags; None for one label per text.
        progress: show a progress bar over the bytes read (tqdm, on stderr).
        max_bytes: refuse a file (or a folder's files together) larger than this, before reading.

    Returns:
        LabelledTexts with at least one text and at least two distinct labels.

    Raises:
        DataError: a one-line message naming the file, the line and the fix.
    """
    if multi_label is not None and (not isinstance(multi_label, str) or not multi_label.strip()):
        raise ConfigError(f"the multi-label separator must be a non-blank string such as '|'; got {multi_label!r}")
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; give a CSV/TSV file, a JSON lines file or a folder with one "
                        "subfolder per class") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}; check the path and its permissions") from None
    if stat.S_ISDIR(info.st_mode):
        if path.suffix.lower() in FILE_SUFFIXES:
            raise DataError(f"{path} is a directory where a {path.suffix} file is expected; pass the file itself "
                            "(a folder data set holds one subfolder per class)")
        data = _read_folder(path, progress, max_bytes)
    else:
        with _open_regular(path, max_bytes) as handle:
            head = handle.read(SNIFF_BYTES)
            handle.seek(0)
            _refuse_binary(path, head)
            lines = _decoded_lines(handle, path, progress, max_bytes)
            if _is_jsonl(path, head):
                data = _read_jsonl(lines, path, text_field, label_field, multi_label)
            else:
                data = _read_csv(lines, path, head, text_field, label_field, multi_label)
    return _checked(data, multi_label)


def read_splits(train: str | os.PathLike, valid: str | os.PathLike | None = None,
                test: str | os.PathLike | None = None, **options: Any) -> dict[str, LabelledTexts]:
    """Read given splits with the same options (those of `read_labelled`): {"train": ..., "valid": ..., ...}.

    Only the splits given are in the result. A label of valid or test that
    train lacks is a DataError naming it (a model cannot predict a class it never saw).
    """
    splits = {"train": read_labelled(train, **options)}
    for name, source in (("valid", valid), ("test", test)):
        if source is not None:
            splits[name] = read_labelled(source, **options)
    known = set(class_counts(splits["train"].labels))
    for name, data in splits.items():
        unknown = [label for label in class_counts(data.labels) if label not in known]
        if unknown:
            raise DataError(f"{data.source} ({name}) has label(s) {_names(unknown)} that the training data "
                            f"{splits['train'].source} lacks; add examples of them to it or drop those rows")
    return splits


def _checked(data: LabelledTexts, multi_label: str | None) -> LabelledTexts:
    if not data.texts:
        why = "; ".join(f"{count} with {reason}" for reason, count in data.skipped.items())
        raise DataError(f"{data.source} holds no usable rows{f' ({why})' if why else ''}; each needs a "
                        "non-empty text and label")
    counts = class_counts(data.labels)
    if len(counts) < 2:
        kind = "tag" if multi_label else "label"
        hint = ("add a subfolder per class" if data.label_field == "folder names" else
                f"is the label column right? it is {data.label_field!r}; choose another with --label-field")
        raise DataError(f"{data.source} has only one {kind} ({_names(counts)}); a classifier needs examples "
                        f"of at least 2 classes: {hint}")
    return data


def _open_regular(path: Path, max_bytes: int) -> IO[bytes]:
    """Open `path` only if it is a regular file within `max_bytes` (a FIFO never blocks the open)."""
    return open_regular_file(path, max_bytes, hint="use a sample of it, or raise the limit (max_bytes) if you mean it")


def _refuse_binary(path: Path, head: bytes) -> None:
    """A clear word for the files that are surely not delimited text or JSON lines."""
    if not head.strip():
        raise DataError(f"{path} is empty; it needs a header row and one labelled text per row")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path} is UTF-16 text; convert it to UTF-8 first: iconv -f utf-16 -t utf-8 FILE > FILE.utf8")
    if head.startswith(b"\x1f\x8b") or head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ"):
        raise DataError(f"{path} is compressed; decompress it first (gunzip, bunzip2, unxz)")
    if head.startswith(b"PK\x03\x04"):
        raise DataError(f"{path} is a zip archive (an .xlsx workbook?); export the sheet as CSV, or unzip it")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{path} holds a NUL byte at offset {nul}: it is a binary file, not CSV or JSON lines")


def _decoded_lines(handle: IO[bytes], path: Path, progress: bool, max_bytes: int) -> Iterator[str]:
    """The lines of `handle` as str with their line endings, decoded strictly, the BOM removed.

    A '\\n' byte never occurs inside a UTF-8 multi-byte character, so decoding
    line by line is exact. Non-UTF-8 bytes are a DataError naming the line and offset.
    """
    from tqdm.auto import tqdm

    total = os.fstat(handle.fileno()).st_size
    bar = tqdm(total=total, desc=f"reading {path.name}", unit="B", unit_scale=True, disable=not progress,
               file=sys.stderr, leave=False)
    offset = pending = 0
    try:
        for number, raw in enumerate(handle, start=1):
            if offset + len(raw) > max_bytes:  # a file growing while it is read
                raise DataError(f"{path} grew past the {max_bytes:,}-byte limit while being read")
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw, offset = raw[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}, line {number} (byte offset {offset + exc.start}): byte "
                                f"{raw[exc.start]:#04x} is not UTF-8; convert the file, e.g. "
                                "iconv -f latin1 -t utf-8 FILE > FILE.utf8") from None
            if "\x00" in line:
                raise DataError(f"{path}, line {number}: a NUL byte; remove it (tr -d '\\000' < FILE > FILE.clean)")
            offset += len(raw)
            pending += len(raw)
            if pending >= PROGRESS_STEP:
                bar.update(pending)
                pending = 0
            yield line
        bar.update(pending)
    finally:
        bar.close()


def _is_jsonl(path: Path, head: bytes) -> bool:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return True
    if suffix in (".csv", ".tsv", ".tab"):
        return False
    first = head.removeprefix(codecs.BOM_UTF8).lstrip()[:1]
    if first == b"[":
        raise DataError(f"{path} looks like one JSON array; rnnkit reads JSON lines (one object per line): "
                        "jq -c '.[]' FILE > FILE.jsonl")
    return first == b"{"


# --------------------------------------------------------------------------- columns


def _pick_field(given: str | None, found: Sequence[str], candidates: Sequence[str], role: str, flag: str,
                path: Path, where: str) -> str:
    """The column / key to read `role` from: `given` (exact, else case-insensitive), else the first known name."""
    by_lower: dict[str, str] = {}
    for name in found:
        by_lower.setdefault(name.strip().lower(), name)
    if given is not None:
        if given in found:
            return given
        if given.strip().lower() in by_lower:
            return by_lower[given.strip().lower()]
        raise DataError(f"{path} has no {where} {given!r} (given with {flag}); {where}s found: {_names(found)}")
    for name in candidates:
        if name in by_lower:
            return by_lower[name]
    raise DataError(f"{path}: no {role} {where} found among {_names(found)}; name it with {flag} "
                    f"(looked for: {', '.join(candidates)})")


def _split_label(value: str, multi_label: str | None) -> Label:
    if multi_label is None:
        return value.strip()
    return tuple(dict.fromkeys(tag.strip() for tag in value.split(multi_label) if tag.strip()))


# --------------------------------------------------------------------------- CSV / TSV


def _sniff_delimiter(path: Path, head: bytes) -> str:
    """The delimiter of a CSV/TSV sample: csv.Sniffer's, checked against the header, else the header's most split."""
    sample = head.removeprefix(codecs.BOM_UTF8)
    if len(head) >= SNIFF_BYTES and b"\n" in sample:
        sample = sample[: sample.rindex(b"\n") + 1]  # whole lines only
    text = sample.decode("utf-8", errors="replace")
    header = text.splitlines()[0] if text.strip() else ""

    def columns(delimiter: str) -> int:
        return len(next(csv.reader([header], delimiter=delimiter), []))

    if path.suffix.lower() in (".tsv", ".tab") and columns("\t") >= 2:
        return "\t"
    try:
        sniffed = csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    if sniffed is not None and len(sniffed) == 1 and sniffed in DELIMITERS and columns(sniffed) >= 2:
        return sniffed
    best = max(DELIMITERS, key=columns)  # ties: the order of DELIMITERS (comma first)
    return best if columns(best) >= 2 else ","


def _read_csv(lines: Iterator[str], path: Path, head: bytes, text_field: str | None, label_field: str | None,
              multi_label: str | None) -> LabelledTexts:
    delimiter = _sniff_delimiter(path, head)
    name = {"\t": "TSV (tab)", ",": "CSV (comma)", ";": "CSV (semicolon)", "|": "CSV (|)"}[delimiter]
    old_limit = csv.field_size_limit(2**31 - 1)  # a long review is fine; the file size is already bounded
    try:
        reader = csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
        rows = _csv_rows(reader, path)
        _, header = next(rows, (1, []))
        if len(header) < 2:
            raise DataError(f"{path}: the header row has {len(header)} column(s) as {name}; it needs a text and a "
                            "label column, e.g. 'text,label'")
        text_col = _pick_field(text_field, header, TEXT_FIELDS, "text", "--text-field", path, "column")
        label_col = _pick_field(label_field, header, LABEL_FIELDS, "label", "--label-field", path, "column")
        if text_col == label_col:
            raise DataError(f"{path}: the text and the label are the same column {text_col!r}; give "
                            "--text-field and --label-field")
        ti, li = header.index(text_col), header.index(label_col)
        texts, labels, skipped = [], [], Counter()
        for number, row in rows:
            if len(row) != len(header):
                raise DataError(f"{path}, line {number}: {len(row)} field(s) where the header has {len(header)} "
                                f"({name}); quote fields that hold the delimiter, or look for an unclosed quote")
            text, label = row[ti].replace("\r\n", "\n").strip(), _split_label(row[li], multi_label)
            if _keep(text, label, skipped):
                texts.append(text)
                labels.append(label)
    finally:
        csv.field_size_limit(old_limit)
    return LabelledTexts(texts, labels, str(path), dict(skipped), text_col, label_col)


def _csv_rows(reader, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank record; a csv.Error becomes a DataError naming the line."""
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}, line {start}: {exc}; fix the quoting on that line") from None
        if row and any(cell.strip() for cell in row) or len(row) > 1:
            yield start, row
        start = reader.line_num + 1


def _keep(text: str, label: Label, skipped: Counter) -> bool:
    if not text:
        skipped["empty text"] += 1
        return False
    if not label:
        skipped["empty label"] += 1
        return False
    return True


# --------------------------------------------------------------------------- JSON lines


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _json_label(value: Any, multi_label: str | None, where: str) -> Label:
    if value is None:
        return () if multi_label else ""
    if isinstance(value, list):
        if multi_label is None:
            raise DataError(f"{where}: the label is a list; for several labels per text pass a separator with "
                            "--multi-label (e.g. --multi-label '|')")
        return tuple(dict.fromkeys(t for t in (_json_scalar(v, where, "label").strip() for v in value) if t))
    return _split_label(_json_scalar(value, where, "label"), multi_label)


def _json_scalar(value: Any, where: str, role: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)  # 5 -> "5", true -> "true"
    raise DataError(f"{where}: the {role} is a JSON {type(value).__name__}; it must be a string or a number")


def _read_jsonl(lines: Iterator[str], path: Path, text_field: str | None, label_field: str | None,
                multi_label: str | None) -> LabelledTexts:
    texts, labels, skipped = [], [], Counter()
    text_key = label_key = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line, parse_constant=_no_constant)
        except ValueError as exc:
            raise DataError(f"{where}: not valid JSON ({exc}); each line must be one JSON object") from None
        if not isinstance(record, dict):
            raise DataError(f"{where}: a JSON {type(record).__name__}, not an object; each line must be "
                            "an object such as {\"text\": \"...\", \"label\": \"...\"}")
        if text_key is None:
            keys = list(record)
            text_key = _pick_field(text_field, keys, TEXT_FIELDS, "text", "--text-field", path, "key")
            label_key = _pick_field(label_field, keys, LABEL_FIELDS, "label", "--label-field", path, "key")
            if text_key == label_key:
                raise DataError(f"{path}: the text and the label are the same key {text_key!r}; give "
                                "--text-field and --label-field")
        text = _json_scalar(record.get(text_key), where, "text").strip()
        label = _json_label(record.get(label_key), multi_label, where)
        if _keep(text, label, skipped):
            texts.append(text)
            labels.append(label)
    if text_key is None:
        raise DataError(f"{path} holds no JSON objects; each line must be one, e.g. "
                        "{\"text\": \"...\", \"label\": \"...\"}")
    return LabelledTexts(texts, labels, str(path), dict(skipped), text_key, label_key)


# --------------------------------------------------------------------------- folder of class folders


def _read_folder(root: Path, progress: bool, max_bytes: int) -> LabelledTexts:
    """``root/<label>/<file>``: each regular, visible, text file is one text labelled by its folder."""
    from tqdm.auto import tqdm

    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        raise DataError(f"cannot list {root}: {exc.strerror}; check its permissions") from None
    classes = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
    if not classes:
        raise DataError(f"{root} has no class subfolders; a folder data set is laid out as "
                        f"{root}/<label>/<one text per file>, e.g. corpus/positive/1.txt")
    skipped: Counter = Counter()
    stray = sum(1 for p in entries if not p.is_dir() and not p.name.startswith("."))
    if stray:
        skipped["file outside a class folder"] = stray
    files: list[tuple[Path, str, int]] = []
    for folder in classes:
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                skipped["hidden file"] += 1
                continue
            try:
                info = entry.stat()
            except OSError:
                skipped["unreadable file"] += 1
                continue
            if stat.S_ISDIR(info.st_mode):
                skipped["folder inside a class folder"] += 1
            elif not stat.S_ISREG(info.st_mode):
                skipped["not a regular file"] += 1
            elif entry.suffix.lower() in BINARY_SUFFIXES:
                skipped["non-text file"] += 1
            else:
                files.append((entry, folder.name.strip(), info.st_size))
    total = sum(size for _, _, size in files)
    if total > max_bytes:
        raise DataError(f"the files in {root} add up to {total:,} bytes, over the {max_bytes:,}-byte limit; "
                        "use a sample of them, or raise the limit (max_bytes) if you mean it")
    texts, labels = [], []
    with tqdm(total=total, desc=f"reading {root.name}", unit="B", unit_scale=True, disable=not progress,
              file=sys.stderr, leave=False) as bar:
        for entry, label, size in files:
            text = _read_text_file(entry, max_bytes)
            bar.update(size)
            if text is None:
                skipped["non-text file"] += 1
            elif _keep(text, label, skipped):
                texts.append(text)
                labels.append(label)
    return LabelledTexts(texts, labels, str(root), dict(skipped), "folder files", "folder names")


def _read_text_file(path: Path, max_bytes: int) -> str | None:
    """The stripped UTF-8 text of one file; None for a binary file (a NUL byte)."""
    with _open_regular(path, max_bytes) as handle:
        raw = handle.read(max_bytes + 1)
    if b"\x00" in raw or raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff").strip()
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}, line {line} (byte offset {exc.start}): byte {raw[exc.start]:#04x} is not "
                        "UTF-8; convert it, e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8") from None


# --------------------------------------------------------------------------- classes


def class_counts(labels: Iterable[Label]) -> dict[str, int]:
    """Examples per label (per tag, for multi-label), most frequent first, ties by name."""
    counts: Counter = Counter()
    for label in labels:
        counts.update(label if isinstance(label, tuple) else (label,))
    return dict(sorted(counts.items(), key=lambda item: (-item[1], str(item[0]))))


def imbalance_warning(counts: dict[str, int], ratio: float = 10.0) -> str | None:
    """A one-line warning when the largest class has >= `ratio` times the examples of the smallest; else None."""
    present = {label: n for label, n in counts.items() if n > 0}
    if len(present) < 2:
        return None
    large = max(present, key=present.get)
    small = min(present, key=present.get)
    times = present[large] / present[small]
    if times < ratio:
        return None
    return (f"the classes are imbalanced: {large!r} has {present[large]:,} examples, {small!r} only "
            f"{present[small]:,} ({times:.0f}x); the model may ignore the small classes, so consider "
            "--class-weights balanced (and read macro-F1, not accuracy)")


def class_weights(counts: dict[str, int], labels_order: Sequence[str]) -> np.ndarray:
    """Loss weights (K,) float32 in the order of `labels_order`, "balanced" as in scikit-learn: n / (k * count).

    n is the number of examples of the K labels, so a data set with equal
    classes gets all ones. A label with no examples is a DataError.
    """
    missing = [label for label in labels_order if counts.get(label, 0) <= 0]
    if missing:
        raise DataError(f"no training examples of {_names(missing)}; class weights need every class present")
    if not labels_order:
        raise DataError("class weights need at least one class")
    n = np.array([counts[label] for label in labels_order], dtype=np.float64)
    return (n.sum() / (len(n) * n)).astype(np.float32)


def label_warnings(labels: Iterable[Label]) -> list[str]:
    """Things worth telling a user about the labels: near-duplicates (case, spacing) and numeric-looking names."""
    names = list(class_counts(labels))
    warnings = []
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(" ".join(name.split()).casefold(), []).append(name)
    for same in groups.values():
        if len(same) > 1:
            warnings.append(f"labels {_names(same)} differ only in case or spacing and are different classes; "
                            "make them one spelling if they mean the same")
    if names and all(_is_number(name) for name in names):
        warnings.append(f"the labels look numeric ({_names(sorted(names, key=float))}); they are treated as "
                        "class names, not as numbers on a scale")
    return warnings


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


# --------------------------------------------------------------------------- splitting


def stratified_split(labels: Sequence[Label], fraction: float,
                     rng: np.random.Generator | int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation), each sorted int64: about `fraction` of the examples, per class, held out.

    Single-label: the validation set has round(N * fraction) examples (at
    least 1), shared among the classes in proportion to their size (largest
    remainders), and every class with >= 2 examples keeps at least one in
    training; a class with one example stays in training. Multi-label (tuple
    labels): a seeded random split of the same size.

    Raises ConfigError for a fraction outside (0, 1) and DataError when no
    example can be held out (every class has a single example).
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"the validation fraction must be in (0, 1); got {fraction!r}")
    rng = np.random.default_rng(rng)  # a Generator is used as is; a seed makes one
    labels = list(labels)
    n = len(labels)
    if n < 2:
        raise DataError(f"{n} example(s) cannot be split into training and validation; add more data")
    target = int(round(n * fraction))
    if labels and isinstance(labels[0], tuple):
        order = rng.permutation(n)
        cut = min(max(1, target), n - 1)
        return np.sort(order[cut:]).astype(np.int64), np.sort(order[:cut]).astype(np.int64)
    groups: dict[Any, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)  # classes in order of first appearance: deterministic
    members = list(groups.values())
    sizes = np.array([len(m) for m in members])
    caps = sizes - 1  # keep one of each class in training
    if caps.sum() == 0:
        raise DataError("every class has a single example, so none can be held out for validation; "
                        "add examples or give a validation file")
    target = min(max(1, target), int(caps.sum()))
    quota = np.minimum(np.floor(sizes * fraction).astype(np.int64), caps)
    remainder = sizes * fraction - quota
    while quota.sum() < target:  # largest remainders first, random among ties, never over a cap
        open_ = np.flatnonzero(quota < caps)
        best = open_[np.lexsort((rng.random(len(open_)), -remainder[open_]))]
        take = best[: target - quota.sum()]
        quota[take] += 1
        remainder[take] -= 1
    train, val = [], []
    for group, count in zip(members, quota):
        shuffled = rng.permutation(np.asarray(group, dtype=np.int64))
        val.append(shuffled[:count])
        train.append(shuffled[count:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _names(items: Iterable[Any], limit: int = 12) -> str:
    """'a', 'b', 'c' (and 9 more): a short, one-line listing for messages."""
    items = list(items)
    shown = ", ".join(repr(str(i)) for i in items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "") if items else "(none)"


__all__ = ["DEFAULT_MAX_BYTES", "TEXT_FIELDS", "LABEL_FIELDS", "LabelledTexts", "read_labelled", "read_splits",
           "class_counts", "imbalance_warning", "class_weights", "label_warnings", "stratified_split"]

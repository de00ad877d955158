"""Pretrained word vectors (`--embeddings FILE`): the text-format reader, coverage, and classify training that
starts from them, frozen or fine-tuned, on both engines."""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
from collections import Counter

import numpy as np
import pytest
from safetensors.numpy import load_file

import rnnkit
from rnnkit.cli import main
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.embeddings import check_dimension, read_word_vectors
from rnnkit.data.labelled import LabelledTexts
from rnnkit.errors import DataError, InputError, TrainingError
from rnnkit.tasks.classify import ClassifySettings, ClassifyTraining, PretrainedEmbeddings, train

TOKENS = ["<pad>", "<unk>", "the", "paris", "cat", "dog", ". . ."]
# exactly representable in float32, so the file's text and the stored float32 agree bit for bit
VECTORS = {"the": [0.5, -1.25, 2.0], "Paris": [1.0, 0.125, -3.5], "cat": [0.75, 0.0, -0.5], ". . .": [4.0, 5.0, 6.0]}


def glove_text(vectors=VECTORS, header=False, newline="\n") -> str:
    lines = [f"{len(vectors)} {len(next(iter(vectors.values())))}"] if header else []
    lines += [" ".join([word, *(repr(x) for x in values)]) for word, values in vectors.items()]
    return newline.join(lines) + newline


def expected_rows() -> dict[int, list[float]]:
    return {2: VECTORS["the"], 3: VECTORS["Paris"], 4: VECTORS["cat"], 6: VECTORS[". . ."]}


# --------------------------------------------------------------------------- the reader


@pytest.mark.parametrize("name, data", [
    ("glove.txt", glove_text().encode()),
    ("word2vec.vec", glove_text(header=True).encode()),
    ("fasttext.vec", glove_text(header=True).replace("\n", " \n").encode()),  # fastText: a space ends each line
    ("crlf.txt", glove_text(newline="\r\n").encode()),
    ("bom.txt", b"\xef\xbb\xbf" + glove_text(header=True).encode()),
    ("glove.txt.gz", gzip.compress(glove_text().encode())),
    ("gzipped-without-suffix", gzip.compress(glove_text(header=True, newline="\r\n").encode())),
])
def test_every_text_format_gives_the_same_vectors(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    vectors = read_word_vectors(tmp_path / name, TOKENS)
    assert vectors.dim == 3 and vectors.source == name
    for row, values in expected_rows().items():
        np.testing.assert_array_equal(vectors.vectors[row], np.array(values, dtype=np.float32))
    assert vectors.found.tolist() == [False, False, True, True, True, False, True]
    assert not vectors.vectors[[0, 1, 5]].any()  # <pad>, <unk> and the missing "dog": left to the model
    assert vectors.lowercased == 1 and vectors.words_found == 4  # "paris" through "Paris"; ". . ." has spaces


def test_the_same_spelling_wins_over_another_casing_wherever_it_is(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("PARIS 1 1\nCat 2 2\nParis 3 3\nparis 4 4\ncat 5 5\nCAT 6 6\n")
    vectors = read_word_vectors(path, ["<pad>", "<unk>", "paris", "cat", "<unk2>"])
    assert vectors.vectors[2].tolist() == [4, 4] and vectors.vectors[3].tolist() == [5, 5]
    assert vectors.lowercased == 0
    path.write_text("PARIS 1 1\nParis 3 3\n")
    assert read_word_vectors(path, ["<pad>", "<unk>", "paris"]).vectors[2].tolist() == [1, 1]  # the first one


def test_coverage_counts_words_and_training_tokens(tmp_path):
    (tmp_path / "v.txt").write_text(glove_text())
    counts = Counter({"the": 10, "paris": 2, "dog": 3, ". . .": 0, "cat": 1, "outside-the-vocabulary": 4})
    vectors = read_word_vectors(tmp_path / "v.txt", TOKENS, counts=counts)
    assert vectors.coverage == pytest.approx(4 / 5)  # of the, paris, cat, dog, ". . ." (not <pad>, <unk>)
    assert vectors.token_coverage == pytest.approx((10 + 2 + 1) / 20)
    summary = vectors.summary()
    assert summary["words_found"] == 4 and summary["dim"] == 3 and summary["file"] == "v.txt"
    assert "4 of 5 words (80.0%), 65.0% of training tokens" in vectors.describe()


def test_reading_streams_and_stops_once_every_word_has_its_own_vector(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("the 1 2\ncat 3 4\nnever-read 1\n")
    assert read_word_vectors(path, ["<pad>", "<unk>", "the", "cat"]).words_found == 2
    with pytest.raises(DataError, match="line 3"):
        read_word_vectors(path, ["<pad>", "<unk>", "the", "cat", "dog"])


def test_numbers_of_unwanted_words_are_not_parsed_but_their_field_count_is(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("the 1 2\nzebra x y\ncat 3 4\n")
    assert read_word_vectors(path, ["<pad>", "<unk>", "cat"]).words_found == 1
    with pytest.raises(DataError, match="'x' .word 'zebra'. is not a number"):
        read_word_vectors(path, ["<pad>", "<unk>", "zebra"])


BAD_FILES = [
    ("short.txt", b"the 1 2 3\ncat 1 2\n", "line 2: 2 numbers after the word, but line 1 has 3"),
    ("long.vec", b"2 2\nthe 1 2\ncat 1 2 3\n", "line 3: 3 numbers after the word, but the header (line 1) says 2"),
    ("word.txt", b"the 1 2\ncat 1 two\n", "line 2: 'two' (word 'cat') is not a number"),
    ("first.txt", b"hello world again\n", "line 1: 'world' (word 'hello') is not a number"),
    ("empty.txt", b"", "is empty"),
    ("blank.txt", b"\n\r\n  \n", "is empty"),
    ("header.vec", b"5 3\n", "has a header but no vectors"),
    ("nan.txt", b"the 1 2\ncat nan 2\n", "line 2: the vector of 'cat' holds NaN or infinity"),
    ("inf.txt", b"cat 1 -inf\n", "line 1: the vector of 'cat' holds NaN or infinity"),
    ("huge.txt", b"cat 1 1e39\n", "holds NaN or infinity (or a number too large for float32)"),
    ("latin1.txt", b"the 1 2\ncaf\xe9 1 2\n", "line 2: byte 0xe9 of the word is not UTF-8"),
    ("tabs.tsv", b"the\t1\t2\n", "no numbers after the word; it is separated by tabs"),
    ("glove.6B.zip", b"PK\x03\x04rest", "unzip it"),
    ("v.txt.xz", b"\xfd7zXZ\x00", "decompress it"),
    ("utf16.txt", "the 1 2\n".encode("utf-16"), "UTF-16"),
    ("cut.txt.gz", gzip.compress(b"the 1 2\nfoo 3 4\n" * 50)[:-12], "damaged or cut short"),
    ("GoogleNews-vectors-negative300.bin.gz", b"\x1f\x8b", "binary word2vec"),
    ("bad-header.vec", b"0 3\nthe 1 2 3\n", "the header says 0 vectors of size 3"),
]


@pytest.mark.parametrize("name, data, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_each_bad_file_is_one_clear_error(tmp_path, name, data, message):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError) as info:
        read_word_vectors(tmp_path / name, ["<pad>", "<unk>", "the", "cat"])
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(tmp_path / name) in str(info.value)


def test_only_a_regular_file_is_read(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_word_vectors(tmp_path / "missing.txt", TOKENS)
    with pytest.raises(DataError, match="is a directory"):
        read_word_vectors(tmp_path, TOKENS)
    os.mkfifo(tmp_path / "fifo")  # a pipe with no writer would block a plain open() for ever
    with pytest.raises(DataError, match="not a regular file"):
        read_word_vectors(tmp_path / "fifo", TOKENS)


def test_a_size_that_disagrees_with_embedding_dim_names_both_fixes(tmp_path):
    (tmp_path / "v.vec").write_text(glove_text(header=True))
    assert check_dimension(tmp_path / "v.vec", None) == 3 and check_dimension(tmp_path / "v.vec", 3) == 3
    for call in (lambda: check_dimension(tmp_path / "v.vec", 100),
                 lambda: read_word_vectors(tmp_path / "v.vec", TOKENS, dim=100)):
        with pytest.raises(DataError, match="3-dimensional vectors .* --embedding-dim is 100; use --embedding-dim 3, "
                                            "or leave it out so it follows the file"):
            call()


# --------------------------------------------------------------------------- training from the vectors

TOPICS = {"billing": "invoice charge refund payment", "login": "password login account reset"}
FILLER = "the app my please when it".split()
FILE_WORDS = {"the": 0, "Invoice": 1, "charge": 2, "refund": 3, "password": 4, "login": 5, "zebra": 6}


def texts(count: int, seed: int) -> LabelledTexts:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        label = rng.choice(sorted(TOPICS))
        words = [rng.choice(TOPICS[label].split()) for _ in range(2)] + [rng.choice(FILLER) for _ in range(4)]
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return LabelledTexts([t for t, _ in rows], [label for _, label in rows], "generated")


def write_vectors(path, dim: int = 6, seed: int = 1) -> dict[str, np.ndarray]:
    """A small GloVe file of FILE_WORDS; returns the vectors by lower-cased word, as float32."""
    rng = np.random.default_rng(seed)
    values = {word: np.round(rng.standard_normal(dim) * 8) / 8 for word in FILE_WORDS}  # exact in float32
    path.write_text("".join(f"{w} {' '.join(repr(float(x)) for x in v)}\n" for w, v in values.items()))
    return {w.lower(): v.astype(np.float32) for w, v in values.items()}


def tiny_run(tmp_path, name, engine, freeze, vectors="v.txt", weight_decay=0.0, **train_options):
    settings = ClassifySettings(labels=("billing", "login"), maxlen=20, vocab_size=None)
    model_config = ModelConfig(vocab_size=1, cell="gru", embedding_dim=5, hidden_size=8, bidirectional=True,
                               pooling="mean_max", dropout=0.1)
    train_config = TrainConfig(epochs=2, batch_size=16, learning_rate=0.02, seed=3, patience=0, threads=1,
                               weight_decay=weight_decay)
    return dict(data=texts(120, seed=0), model_config=model_config, train_config=train_config, settings=settings,
                out_dir=tmp_path / name, progress=False, engine=engine,
                embeddings=PretrainedEmbeddings(tmp_path / vectors, freeze=freeze), **train_options)


def initial_embedding(run: dict) -> tuple[np.ndarray, ClassifyTraining]:
    """The embedding a run starts from (fit's seeding, setup and the engine's parts, without training), and
    the training it set up."""
    from rnnkit.training.trainer import seed_everything

    training = ClassifyTraining(run["data"], run["model_config"], run["settings"], 16, 0.1, None, run["embeddings"])
    config = run["train_config"]
    training.setup(seed_everything(config.seed))
    if run["engine"] == "torch":
        import torch

        parts = training.torch_parts(config, torch.device("cpu"))
    else:
        parts = training.numpy_parts(config)
    return parts.tensors(parts.model)["embedding.weight"], training


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_frozen_vectors_are_bit_identical_after_training_and_fine_tuned_ones_move(tmp_path, engine):
    file_vectors = write_vectors(tmp_path / "v.txt")
    frozen = tiny_run(tmp_path, "frozen", engine, freeze=True, weight_decay=0.5)  # decay must not touch them
    start, training = initial_embedding(frozen)
    vocab = training.vocab["tokens"]
    for word, values in file_vectors.items():  # the file's vectors land in the model, the rest stays random
        if word in vocab:
            np.testing.assert_array_equal(start[vocab.index(word)], values)
    assert not start[0].any() and training.vectors.words_found == 6  # <pad> stays zero; zebra is not a word here

    train(**frozen)
    trained = load_file(str(tmp_path / "frozen" / "model.safetensors"))
    np.testing.assert_array_equal(trained["embedding.weight"], start)
    settings = json.loads((tmp_path / "frozen" / "config.json").read_text())["settings"]["embeddings"]
    assert settings["frozen"] is True and settings["file"] == "v.txt" and settings["dim"] == 6
    assert settings["words_found"] == 6 and settings["coverage"] == pytest.approx(6 / (len(vocab) - 2), abs=1e-6)

    tuned = tiny_run(tmp_path, "tuned", engine, freeze=False)
    train(**tuned)
    moved = load_file(str(tmp_path / "tuned" / "model.safetensors"))["embedding.weight"]
    found = np.flatnonzero(training.vectors.found)
    assert np.abs(moved[found] - start[found]).max() > 1e-4 and not moved[0].any()
    assert moved.shape == (len(vocab), 6)


def test_a_resume_with_other_vectors_is_refused(tmp_path):
    write_vectors(tmp_path / "v.txt")
    write_vectors(tmp_path / "other.txt", seed=2)
    run = tiny_run(tmp_path, "run", "numpy", freeze=False)
    train(**run)
    with pytest.raises(TrainingError, match="embeddings.*other.txt"):
        train(**tiny_run(tmp_path, "run", "numpy", freeze=False, vectors="other.txt", resume=True))
    (tmp_path / "v.txt").write_text((tmp_path / "other.txt").read_text())  # same name, other numbers
    with pytest.raises(TrainingError, match="sha256"):
        train(**tiny_run(tmp_path, "run", "numpy", freeze=False, resume=True))


# --------------------------------------------------------------------------- the command line and rnnkit.train


def write_csv(path, data: LabelledTexts):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("text", "label"))
        writer.writerows(zip(data.texts, data.labels))
    return path


def test_the_command_line_trains_from_vectors_and_reports_their_coverage(tmp_path, capsys):
    write_csv(tmp_path / "train.csv", texts(120, seed=0))
    file_vectors = write_vectors(tmp_path / "v.txt", dim=6)
    code = main(["train", "classify", "--data", str(tmp_path / "train.csv"), "--out", str(tmp_path / "run"),
                 "--embeddings", str(tmp_path / "v.txt"), "--freeze-embeddings", "--epochs", "2", "--hidden", "8",
                 "--batch-size", "16", "--engine", "numpy", "--threads", "1"])
    assert code == 0
    err = capsys.readouterr().err
    assert "Embedding(16, 6)" in err and "pretrained vectors v.txt (6-d): 6 of 14 words (42.9%)" in err
    assert "of training tokens, frozen" in err
    card = (tmp_path / "run" / "README.md").read_text()
    assert "- word vectors: `v.txt` (6-d) for 6 vocabulary words (42.9%)" in card and "frozen in training" in card
    model = rnnkit.load(tmp_path / "run")
    weight = model.bundle.tensors["embedding.weight"]
    assert model.bundle.settings["embeddings"]["frozen"] is True
    np.testing.assert_array_equal(weight[model.vocab.tokens.index("invoice")], file_vectors["invoice"])
    assert model.predict("refund my invoice")[0]["label"] in ("billing", "login")


def test_rnnkit_train_takes_embeddings_and_freeze_embeddings(tmp_path):
    write_csv(tmp_path / "train.csv", texts(120, seed=0))
    write_vectors(tmp_path / "v.txt", dim=4)
    model = rnnkit.train("classify", data=tmp_path / "train.csv", out=tmp_path / "run", embeddings=tmp_path / "v.txt",
                         freeze_embeddings=True, epochs=1, hidden=8, batch_size=16, quiet=True, engine="numpy",
                         threads=1)
    assert model.bundle.config.embedding_dim == 4
    assert model.bundle.settings["embeddings"]["frozen"] is True


@pytest.mark.parametrize("argv, message", [
    (["--embeddings", "{vectors}", "--embedding-dim", "50"],
     "6-dimensional vectors (line 1 has 6) but --embedding-dim is 50; use --embedding-dim 6, or leave it out"),
    (["--freeze-embeddings"], "--freeze-embeddings keeps pretrained vectors fixed; give them with --embeddings FILE"),
    (["--embeddings", "{missing}"], "does not exist; check the path"),
])
def test_bad_embedding_options_are_one_line_before_any_data_is_read(tmp_path, capsys, argv, message):
    write_vectors(tmp_path / "v.txt")
    files = {"vectors": str(tmp_path / "v.txt"), "missing": str(tmp_path / "nope.txt")}
    code = main(["train", "classify", "--data", str(tmp_path / "no-data-yet.csv"), "--out", str(tmp_path / "run"),
                 *[a.format(**files) for a in argv], "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_without_vectors_the_embedding_size_is_still_128_or_as_given(tmp_path):
    from rnnkit.cli import build_parser
    from rnnkit.cli.classify import pretrained_embeddings

    parse = build_parser().parse_args
    assert pretrained_embeddings(parse(["train", "classify", "--out", "x"])) == (None, 128)
    assert pretrained_embeddings(parse(["train", "classify", "--out", "x", "--embedding-dim", "16"])) == (None, 16)
    with pytest.raises(InputError):
        pretrained_embeddings(parse(["train", "classify", "--out", "x", "--freeze-embeddings"]))

"""Property-based tests (hypothesis): tokenizers, vocabularies, padding/bucketing, bundle round trips and fuzzing.

These extend test_vocab.py and test_batching.py (which check the word tokenizer on
`st.text()`, vocab JSON round trips on word lists, and bucketing coverage) to any
string (lone surrogates, NUL and control characters included), every padding side,
every architecture the params contract knows, and damaged bundle bytes.

RNNKIT_FUZZ_EXAMPLES=N runs every property here with N examples (bench/reliability.py
counts them); by default each test runs its own small number, so the file stays fast.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rnnkit.bundle import load_bundle, read_weights, save_bundle
from rnnkit.config import ModelConfig
from rnnkit.data.batching import bucket_batches, iterate_batches, pad_batch, truncate
from rnnkit.data.pairs import PairVocab, detokenize
from rnnkit.data.pairs import tokenize as pair_tokenize
from rnnkit.data.vocab import PAD_ID, UNK_ID, Vocab, tokenize
from rnnkit.errors import BundleError
from rnnkit.params import parameter_shapes

FUZZ_EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "0"))


def examples(n: int):
    """`n` examples (or RNNKIT_FUZZ_EXAMPLES), no deadline (the machine is shared), fixtures allowed."""
    return settings(max_examples=FUZZ_EXAMPLES or n, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# any code point, lone surrogates included (st.text() leaves them out), weighted towards the odd ones
ODD = st.sampled_from(["\x00", "\ud800", "\udfff", "\u200b", "\u200f", "\u202e", "\ufeff", "\x1b", "\x7f", "<br />",
                       "İ", "ß", "ǅ", "ﬁ", "\u0301", "😀", "映画", "don't", "!", "?", "_", "'", "\t", "\r\n"])
ANY_TEXT = st.lists(st.one_of(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), ODD),
                    max_size=40).map("".join)


# --------------------------------------------------------------------------- tokenizer and vocabulary


@examples(300)
@given(ANY_TEXT)
def test_tokenizer_never_raises_and_gives_clean_tokens(text):
    tokens = tokenize(text)
    for token in tokens:
        assert token and not any(c.isspace() for c in token) and "<" not in token and ">" not in token
        assert token in ("!", "?") or token[0].isalnum()
    assert tokenize(" ".join(tokens)) == tokens  # tokenizing its own output changes nothing


@examples(200)
@given(ANY_TEXT, st.lists(st.text(min_size=1, max_size=6), max_size=20), st.integers(3, 30))
def test_ids_are_in_range_for_any_text_and_any_vocabulary(text, words, size):
    vocab = Vocab.build(Counter(words + tokenize(text)[:5]), max_size=size)
    ids = vocab.encode(tokenize(text))
    assert all(UNK_ID <= i < len(vocab) for i in ids)  # never padding, never past the table


@examples(200)
@given(st.dictionaries(st.text(max_size=6), st.integers(1, 50), max_size=40), st.one_of(st.none(), st.integers(3, 40)),
       st.integers(1, 3))
def test_vocabulary_build_is_ranked_unique_and_round_trips(counts, max_size, min_freq):
    vocab = Vocab.build(Counter(counts), max_size=max_size, min_freq=min_freq)
    words = vocab.tokens[2:]
    assert vocab.tokens[:2] == ("<pad>", "<unk>") and len(set(vocab.tokens)) == len(vocab)
    assert max_size is None or len(vocab) <= max_size
    assert all(counts[w] >= min_freq for w in words)
    keys = [(-counts[w], w) for w in words]
    assert keys == sorted(keys)  # most frequent first, ties alphabetical
    assert Vocab.from_json(json.loads(json.dumps(vocab.to_json()))) == vocab
    assert vocab.decode(vocab.encode(list(words))) == list(words)  # every kept word round trips
    assert vocab.encode(["<pad>"]) == [UNK_ID]  # text spelling <pad> is never padding


@examples(150)
@given(st.lists(ANY_TEXT, min_size=1, max_size=8), st.booleans())
def test_char_level_pair_vocabulary_round_trips_its_own_text(texts, lowercase):
    texts = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]  # what a UTF-8 file can hold
    vocab = PairVocab.build(texts, "char", lowercase=lowercase)
    for text in texts:
        tokens = pair_tokenize(text, "char", lowercase)
        ids = vocab.encode(text)
        assert all(4 <= i < len(vocab) for i in ids)
        assert vocab.decode(ids) == "".join(tokens)


@examples(150)
@given(st.lists(ANY_TEXT, min_size=1, max_size=8))
def test_word_level_pair_vocabulary_ids_and_decoding(texts):
    vocab = PairVocab.build(texts, "word")
    for text in texts:
        tokens = pair_tokenize(text, "word", True)
        ids = vocab.encode(text)
        assert len(ids) == len(tokens) and all(4 <= i < len(vocab) for i in ids)  # every token was seen: no <unk>
        assert detokenize(tokens, "word") == vocab.decode(ids)
    assert PairVocab.from_json(json.loads(json.dumps(vocab.to_json()))) == vocab


# --------------------------------------------------------------------------- truncation, padding, bucketing


SEQUENCES = st.lists(st.lists(st.integers(1, 99), min_size=1, max_size=30), min_size=1, max_size=40)


@examples(200)
@given(st.lists(st.integers(0, 99), max_size=50), st.integers(1, 60), st.sampled_from(["pre", "post"]))
def test_truncate_keeps_the_right_end_and_length(ids, maxlen, side):
    cut = list(truncate(ids, maxlen, side))
    assert len(cut) == min(len(ids), maxlen)
    if side == "pre":
        assert cut == ids[len(ids) - len(cut):]  # the ending is kept
    else:
        assert cut == ids[:len(cut)]


@examples(200)
@given(SEQUENCES, st.sampled_from(["pre", "post"]), st.integers(0, 5))
def test_pad_batch_places_every_sequence_whole_on_its_side(sequences, padding, extra):
    width = max(map(len, sequences)) + extra
    ids, lengths = pad_batch(sequences, padding=padding, length=width)
    assert ids.shape == (len(sequences), width) and lengths.tolist() == [len(s) for s in sequences]
    for row, seq in zip(ids, sequences):
        n = len(seq)
        real, pad = (row[:n], row[n:]) if padding == "post" else (row[width - n:], row[:width - n])
        assert real.tolist() == seq and (pad == PAD_ID).all()


@examples(150)
@given(SEQUENCES, st.integers(1, 9), st.one_of(st.none(), st.integers(0, 5)), st.booleans())
def test_iterate_batches_yields_every_sequence_exactly_once_unchanged(sequences, batch_size, seed, bucket):
    arrays = [np.asarray(s, dtype=np.int64) for s in sequences]
    labels = np.arange(len(sequences)) % 2
    rng = None if seed is None else np.random.default_rng(seed)
    seen = []
    for batch in iterate_batches(arrays, labels, batch_size, rng, bucket=bucket):
        assert 1 <= len(batch.index) <= batch_size and batch.ids.shape[1] == batch.lengths.max()
        for row, length, label, i in zip(batch.ids, batch.lengths, batch.labels, batch.index):
            assert length == len(sequences[i]) and row[:length].tolist() == sequences[i]
            assert (row[length:] == PAD_ID).all() and label == labels[i]
        seen.extend(batch.index.tolist())
    assert sorted(seen) == list(range(len(sequences)))


@examples(150)
@given(st.lists(st.integers(1, 80), min_size=1, max_size=200), st.integers(1, 16))
def test_evaluation_bucketing_is_sorted_by_length(lengths, batch_size):
    lengths = np.asarray(lengths)
    batches = bucket_batches(lengths, batch_size, None)
    order = np.concatenate(batches)
    assert sorted(order.tolist()) == list(range(len(lengths)))
    assert (np.diff(lengths[order]) >= 0).all()  # least padding: neighbours in length share a batch


@examples(100)
@given(SEQUENCES, st.integers(1, 9), st.integers(1, 20), st.sampled_from(["pre", "post"]), st.sampled_from(["pre", "post"]))
def test_sentiment_batches_in_both_modes_cover_every_review_once(sequences, batch_size, maxlen, padding, truncating):
    from rnnkit.tasks.sentiment import SentimentSettings, make_batches

    arrays = [np.asarray(s, dtype=np.int64) for s in sequences]
    labels = np.arange(len(sequences)) % 2
    config = SentimentSettings(maxlen=maxlen, padding=padding, truncating=truncating, vocab_size=None)
    batches = make_batches(arrays, labels, config, batch_size, np.random.default_rng(0))
    seen = []
    for batch in batches:
        for row, length, i in zip(batch.ids, batch.lengths, batch.index):
            kept = list(truncate(sequences[i], maxlen, truncating))
            if padding == "post":
                assert length == len(kept) and row[:length].tolist() == kept
            else:  # Keras-style: fixed maxlen, pre-padded, the model reads the padding too
                assert length == maxlen == len(row) and row[maxlen - len(kept):].tolist() == kept
        seen.extend(batch.index.tolist())
    assert sorted(seen) == list(range(len(sequences)))


# --------------------------------------------------------------------------- bundles


def _config(draw_arch, cell, layers, bi, hidden, emb, vocab, target_vocab, pooling, attention, output):
    if draw_arch == "encoder_decoder":
        return "seq2seq", ModelConfig(vocab_size=vocab, target_vocab_size=target_vocab, architecture="encoder_decoder",
                                      cell=cell, num_layers=layers, bidirectional=bi, hidden_size=hidden,
                                      embedding_dim=emb, attention=attention)
    if draw_arch == "many_to_many":
        return "charlm", ModelConfig(vocab_size=vocab, architecture="many_to_many", cell=cell, num_layers=layers,
                                     bidirectional=bi, hidden_size=hidden, embedding_dim=emb, output_size=vocab)
    return "sentiment", ModelConfig(vocab_size=vocab, cell=cell, num_layers=layers, bidirectional=bi,
                                    hidden_size=hidden, embedding_dim=emb, pooling=pooling, output_size=output)


CONFIGS = st.builds(_config, st.sampled_from(["many_to_one", "many_to_many", "encoder_decoder"]),
                    st.sampled_from(["rnn", "lstm", "gru"]), st.integers(1, 3), st.booleans(), st.integers(1, 6),
                    st.integers(1, 6), st.integers(5, 12), st.integers(5, 12),
                    st.sampled_from(["last", "max", "mean", "mean_max"]), st.sampled_from(["none", "bahdanau", "luong"]),
                    st.integers(1, 3))
JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False)
                       | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                       max_leaves=8)


def _vocab_for(task, config):
    def table(n):
        return {"type": "word", "tokenizer": "t", "tokens": ["<pad>", "<unk>", *[f"w{i}" for i in range(n - 2)]]}
    if task == "seq2seq":
        return {"source": table(config.vocab_size), "target": table(config.target_vocab_size)}
    return table(config.vocab_size)


@examples(60)
@given(CONFIGS, st.integers(0, 2**32 - 1), st.dictionaries(st.text(max_size=6), JSONISH, max_size=4))
def test_bundle_round_trip_is_exact_for_every_architecture(tmp_path_factory, task_config, seed, extra):
    task, config = task_config
    rng = np.random.default_rng(seed)
    tensors = {k: (rng.standard_normal(s) * 10.0 ** rng.integers(-30, 30)).astype(np.float32)
               for k, s in parameter_shapes(config).items()}
    path = tmp_path_factory.mktemp("b")
    save_bundle(path, task, config, _vocab_for(task, config), tensors, settings=extra, metrics=extra)
    loaded = load_bundle(path)
    assert loaded.config == config and loaded.task == task and loaded.vocab == _vocab_for(task, config)
    assert loaded.settings == extra and loaded.metrics == extra
    assert loaded.tensors.keys() == tensors.keys()
    for name, value in tensors.items():
        assert loaded.tensors[name].dtype == np.float32
        np.testing.assert_array_equal(loaded.tensors[name], value)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    config = ModelConfig(vocab_size=9, embedding_dim=3, hidden_size=2, cell="lstm", bidirectional=True)
    rng = np.random.default_rng(0)
    tensors = {k: rng.standard_normal(s).astype(np.float32) for k, s in parameter_shapes(config).items()}
    path = save_bundle(tmp_path_factory.mktemp("fuzz") / "b", "sentiment", config, _vocab_for("sentiment", config),
                       tensors)
    return path, {name: (path / name).read_bytes() for name in ("config.json", "vocab.json", "model.safetensors")}


MUTATIONS = st.lists(st.tuples(st.sampled_from(["set", "insert", "delete", "cut"]), st.integers(0, 2**31),
                               st.integers(0, 255)), min_size=1, max_size=4)


def _mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, where, byte in mutations:
        at = where % (len(out) + 1)
        if kind == "set" and at < len(out):
            out[at] = byte
        elif kind == "insert":
            out[at:at] = bytes([byte])
        elif kind == "delete":
            del out[at:at + 1 + byte % 8]
        elif kind == "cut":
            del out[at:]
    return bytes(out)


@examples(300)
@given(st.sampled_from(["config.json", "vocab.json", "model.safetensors"]), MUTATIONS)
def test_damaged_bundle_bytes_are_refused_or_load_exactly(saved, tmp_path_factory, name, mutations):
    """Never any exception but BundleError; and whatever loads is exactly what was saved."""
    path, original = saved
    damaged = _mutate(original[name], mutations)
    copy = tmp_path_factory.mktemp("d") / "b"
    shutil.copytree(path, copy)
    (copy / name).write_bytes(damaged)
    try:
        bundle = load_bundle(copy)
    except BundleError as exc:
        assert str(copy) in str(exc)
        return
    reference = load_bundle(path)
    assert bundle.config == reference.config and bundle.vocab == reference.vocab
    for key, value in reference.tensors.items():
        np.testing.assert_array_equal(bundle.tensors[key], value)


HEADER_ENTRY = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F16", "I64", "BOOL", "x"]) | JSONISH,
    "shape": st.lists(st.integers(-2, 2**40), max_size=3) | JSONISH,
    "data_offsets": st.lists(st.integers(-2, 2**40), min_size=0, max_size=3) | JSONISH})


@examples(300)
@given(st.dictionaries(st.text(max_size=12), HEADER_ENTRY | JSONISH, max_size=5), st.binary(max_size=64))
def test_any_safetensors_header_is_refused_cleanly_or_read_exactly(tmp_path_factory, header, body):
    raw = json.dumps(header).encode()
    path = tmp_path_factory.mktemp("h") / "model.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + body)
    try:
        tensors = read_weights(path)
    except BundleError as exc:
        assert str(path) in str(exc)
        return
    assume(tensors)
    for name, array in tensors.items():  # accepted: float32 with the shape the header gave, tiling the body
        assert array.dtype == np.float32 and list(array.shape) == header[name]["shape"]
    assert sum(a.nbytes for a in tensors.values()) == len(body)

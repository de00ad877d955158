from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.data.vocab import PAD_ID, UNK_ID, Vocab, count_tokens, remap_to_size, tokenize
from rnnkit.errors import BundleError, ConfigError


def test_tokenize_lowercases_strips_html_breaks_and_keeps_sentiment_punctuation():
    assert tokenize("Great film!<br /><br />I'd SEE it again... Really?") == \
        ["great", "film", "!", "i'd", "see", "it", "again", "really", "?"]


def test_tokenize_keeps_other_scripts_and_drops_symbols():
    assert tokenize("Très bien 映画 😀 -- ok") == ["très", "bien", "映画", "ok"]
    assert tokenize("") == [] and tokenize("   \t\n") == [] and tokenize("😀😀") == []


@given(st.text())
def test_tokenize_never_raises_and_yields_nonempty_tokens(text):
    assert all(token for token in tokenize(text))


def test_vocab_reserves_pad_and_unk_and_ranks_by_frequency_then_alphabet():
    vocab = Vocab.build(Counter({"b": 3, "a": 3, "c": 5, "d": 1}), max_size=4)
    assert vocab.tokens == ("<pad>", "<unk>", "c", "a")
    assert vocab.encode(["c", "a", "b", "zzz"]) == [2, 3, UNK_ID, UNK_ID]
    assert len(Vocab.build(Counter({"a": 1, "b": 1}))) == 4  # None = every word


def test_vocab_min_freq_and_size_validation():
    assert Vocab.build(Counter({"a": 2, "b": 1}), min_freq=2).tokens == ("<pad>", "<unk>", "a")
    with pytest.raises(ConfigError):
        Vocab.build(Counter({"a": 1}), max_size=2)


@given(st.lists(st.text(min_size=1, max_size=5), max_size=30), st.integers(3, 40))
def test_vocab_json_round_trip_and_ids_in_range(words, size):
    vocab = Vocab.build(count_tokens([words]), max_size=size)
    again = Vocab.from_json(vocab.to_json())
    assert again == vocab and len(vocab) <= size
    ids = vocab.encode(words)
    assert all(0 <= i < len(vocab) and i != PAD_ID for i in ids)
    assert [t if t in vocab.tokens[2:] else "<unk>" for t in words] == vocab.decode(ids)


def test_vocab_from_json_refuses_damaged_tables():
    with pytest.raises(BundleError):
        Vocab.from_json({"type": "char", "tokenizer": "x", "tokens": []})
    with pytest.raises(BundleError, match="twice"):
        Vocab.from_json({"type": "word", "tokenizer": "rnnkit-word-v1", "tokens": ["<pad>", "<unk>", "a", "a"]})


def test_remap_to_size_sends_rare_ids_to_unk():
    ids = np.array([0, 2, 5, 9], dtype=np.int32)
    assert remap_to_size(ids, 6).tolist() == [0, 2, 5, UNK_ID]

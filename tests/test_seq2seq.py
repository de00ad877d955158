"""Sequence to sequence: pair data, generated tasks, decoding, both engines, training, translate, bad input."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data import generated
from rnnkit.data.pairs import (BOS_ID, EOS_ID, UNK_ID, PairVocab, encode_pairs, read_pairs, split_by_source,
                               tokenize)
from rnnkit.decoding import beam_search, greedy
from rnnkit.errors import DataError, InputError
from rnnkit.params import parameter_shapes
from rnnkit.tasks import load_predictor
from rnnkit.tasks import seq2seq as s2s
from rnnkit.tasks.seq2seq.numpy_backend import NumpyBackend
from rnnkit.torch_engine import export_tensors, load_tensors
from rnnkit.torch_engine.seq2seq import EncoderDecoder

ATTENTIONS = ("none", "bahdanau", "luong")


# --------------------------------------------------------------------------- data

def test_word_and_char_tokens_round_trip():
    assert tokenize("I'm cold. J'ai froid !", "word", True) == ["i'm", "cold", ".", "j'ai", "froid", "!"]
    assert tokenize("Ab  c", "char", False) == ["A", "b", " ", "c"]
    vocab = PairVocab.build(["il fait froid.", "il pleut."], "word")
    assert vocab.vocab.tokens[:4] == ("<pad>", "<unk>", "<s>", "</s>")
    ids = vocab.encode("il fait beau.")
    assert ids[2] == UNK_ID and vocab.decode(ids + [EOS_ID, 5]) == "il fait <unk>."
    again = PairVocab.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again == vocab


def test_read_pairs_ignores_extra_columns_and_blank_lines(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("Go.\tVa !\tCC-BY attribution\n\nHi.\tSalut.\n", encoding="utf-8")
    assert read_pairs(path) == [("Go.", "Va !"), ("Hi.", "Salut.")]
    (tmp_path / "bad.tsv").write_text("Go.\tVa !\nno tab here\n")
    with pytest.raises(DataError, match="line 2: no tab"):
        read_pairs(tmp_path / "bad.tsv")
    (tmp_path / "latin1.tsv").write_bytes(b"caf\xe9\tcafe\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_pairs(tmp_path / "latin1.tsv")
    with pytest.raises(DataError, match="--task dates"):
        read_pairs(tmp_path / "missing.tsv")


def test_length_filter_and_split_keep_sources_apart():
    pairs = [("a b", "x"), ("", "y"), ("a b c d", "z"), ("c", "")]
    vocab = PairVocab.build(["a b c d", "x y z"], "word")
    data, kept = encode_pairs(pairs, vocab, vocab, max_source_len=3, max_target_len=3)
    assert kept.tolist() == [0] and data.sources[0].tolist() == vocab.encode("a b")
    sources = [f"s{i % 40}" for i in range(200)]  # 40 distinct sources, 5 pairs each
    train, held = split_by_source(sources, 0.1, np.random.default_rng(0))
    assert len(held) == 20 and not {sources[i] for i in train} & {sources[i] for i in held}
    assert sorted(train.tolist() + held.tolist()) == list(range(200))


def test_generated_dates_are_correct_iso_dates():
    assert [generated.ordinal(d) for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]
    pairs = generated.date_pairs(500, seed=3)
    assert pairs == generated.date_pairs(500, seed=3)
    for text, iso in pairs:
        date = dt.date.fromisoformat(iso)
        assert str(date.year) in text
        assert generated.MONTHS[date.month - 1][:3].lower() in text.lower() or f"{date.month}" in text
    day = dt.date(2021, 3, 3)
    assert generated.DATE_FORMS[4](day) == "the 3rd of March, 2021"
    assert generated.DATE_FORMS[13](day) == "03/03/2021"
    assert all(t == s[::-1] for s, t in generated.reverse_pairs(50))


def test_generated_splits_hold_out_distinct_unseen_sources():
    splits = s2s.generated_splits("dates", 3000, 300, 500, seed=0)
    train, val, test = ({s for s, _ in part} for part in (splits.train, splits.val, splits.test))
    assert len(val) == 300 and len(test) == 500  # every held-out source counts once
    assert not (train & val) and not (train & test) and not (val & test)


# --------------------------------------------------------------------------- decoding

def _markov(table):
    """A step function over a fixed next-token log-prob table (V, V); state = nothing."""
    logp = np.log(np.asarray(table, dtype=np.float64))
    return lambda tokens, state: (logp[tokens], state, None), (lambda state, rows: state)


def _exhaustive_best(table, bos, eos, max_len, alpha):
    """Best finished sequence by brute force (the reference for beam search)."""
    logp = np.log(np.asarray(table))
    best = (-np.inf, None)
    for n in range(1, max_len + 1):
        for body in itertools.product([t for t in range(len(table)) if t != eos], repeat=n - 1):
            seq, prev, total = list(body) + [eos], bos, 0.0
            for token in seq:
                total, prev = total + logp[prev, token], token
            best = max(best, (total / n ** alpha, body))
    return list(best[1]), best[0]


def test_beam_search_matches_exhaustive_search_and_beats_greedy():
    # tokens: 0 pad, 1 unk, 2 <s>, 3 </s>, 4, 5. Greedy takes 4 (0.5) then must ramble; 5 then </s> is better.
    table = [[1 / 6] * 6] * 2 + [
        [.01, .01, .01, .01, .5, .46],    # after <s>
        [1 / 6] * 6,                      # after </s> (never used)
        [.01, .01, .01, .3, .34, .33],    # after 4
        [.01, .01, .01, .95, .01, .01]]   # after 5
    table = np.asarray(table) / np.asarray(table).sum(axis=1, keepdims=True)
    step, select = _markov(table)
    g = greedy(step, None, 1, BOS_ID, EOS_ID, max_len=6)[0]
    assert g.tokens[:2] == [4, 4]
    for alpha in (0.0, 1.0):
        b = beam_search(step, select, None, 1, BOS_ID, EOS_ID, max_len=6, beam_size=4, alpha=alpha)[0]
        tokens, score = _exhaustive_best(table, BOS_ID, EOS_ID, 6, alpha)
        assert b.tokens == tokens == [5] and b.finished
        assert b.score == pytest.approx(score)


def test_beam_search_on_random_tables_equals_brute_force_when_wide():
    rng = np.random.default_rng(0)
    for trial in range(5):
        table = rng.dirichlet(np.ones(6) * 0.5, size=6)
        step, select = _markov(table)
        # two sentences in one batch must not interfere
        b = beam_search(step, select, None, 2, BOS_ID, EOS_ID, max_len=4, beam_size=64, alpha=1.0)
        tokens, score = _exhaustive_best(table, BOS_ID, EOS_ID, 4, 1.0)
        assert b[0].tokens == b[1].tokens == tokens and b[0].score == pytest.approx(score)


def test_decoding_rejects_bad_limits():
    step, select = _markov(np.full((6, 6), 1 / 6))
    with pytest.raises(ValueError, match="max_len"):
        greedy(step, None, 1, BOS_ID, EOS_ID, max_len=0)
    with pytest.raises(ValueError, match="beam size"):
        beam_search(step, select, None, 1, BOS_ID, EOS_ID, 5, beam_size=0)


# --------------------------------------------------------------------------- models

def _config(attention="none", cell="gru", layers=1, bi=True, **kw):
    return ModelConfig(vocab_size=13, target_vocab_size=11, architecture="encoder_decoder", cell=cell,
                       embedding_dim=6, hidden_size=5, num_layers=layers, bidirectional=bi, attention=attention, **kw)


def _source(lengths=(6, 3, 1, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 13, (len(lengths), max(lengths)), generator=g)
    for row, n in enumerate(lengths):
        ids[row, n:] = 0
    return ids, torch.tensor(lengths)


MODEL_CASES = [(a, c, layers, bi) for a in ATTENTIONS for c in ("rnn", "lstm", "gru")
               for layers, bi in ((1, False), (2, True))]


@pytest.mark.parametrize("attention,cell,layers,bi", MODEL_CASES)
def test_torch_model_names_padding_and_fused_path(attention, cell, layers, bi):
    torch.manual_seed(0)
    config = _config(attention, cell, layers, bi)
    model = EncoderDecoder(config).eval()
    names = {k: tuple(v.shape) for k, v in model.shared_parameters().items()}
    assert names == parameter_shapes(config) and len(list(model.parameters())) == len(names)
    src, lengths = _source()
    tgt = torch.randint(2, 11, (4, 5), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = model(src, lengths, tgt)
        alone = torch.cat([model(src[i:i + 1, :n], lengths[i:i + 1], tgt[i:i + 1]) for i, n in enumerate(lengths.tolist())])
        stepwise = model(src, lengths, tgt, teacher_forcing=0.9999999)  # the step-by-step path, always the true token
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(stepwise, batched, atol=1e-5, rtol=0)
    tensors = export_tensors(model)
    clone = load_tensors(EncoderDecoder(config), tensors).eval()
    with torch.no_grad():
        torch.testing.assert_close(clone(src, lengths, tgt), batched, atol=0, rtol=0)


def test_teacher_forcing_zero_feeds_own_predictions():
    torch.manual_seed(0)
    model = EncoderDecoder(_config("luong")).eval()
    src, lengths = _source()
    tgt = torch.randint(4, 11, (4, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        free = model(src, lengths, tgt, teacher_forcing=0.0)
        fed = torch.cat([tgt[:, :1], free.argmax(-1)[:, :-1]], dim=1)  # <s>-slot token, then its own argmaxes
        torch.testing.assert_close(model(src, lengths, fed), free, atol=1e-5, rtol=0)


@pytest.mark.parametrize("attention,cell,layers,bi", MODEL_CASES)
def test_numpy_decoding_equals_torch(attention, cell, layers, bi):
    torch.manual_seed(2)
    config = _config(attention, cell, layers, bi)
    module = EncoderDecoder(config).eval()
    tensors = export_tensors(module)
    src, lengths = _source(seed=3)
    torch_backend, numpy_backend = s2s.TorchBackend(module), NumpyBackend(config, tensors)
    states = [b.start(src.numpy(), lengths.numpy()) for b in (torch_backend, numpy_backend)]
    tokens = np.full(4, BOS_ID)
    for _ in range(4):
        (lp_t, st_t, at_t), (lp_n, st_n, at_n) = (b.step(tokens, s) for b, s in
                                                  zip((torch_backend, numpy_backend), states))
        np.testing.assert_allclose(lp_n, lp_t, atol=1e-5, rtol=0)
        if attention != "none":
            np.testing.assert_allclose(at_n, at_t, atol=1e-5, rtol=0)
            assert np.all(at_n[2, 1:] == 0)  # the length-1 source attends only to its one real step
        states = [st_t, st_n]
        tokens = lp_t.argmax(1)
    rows = np.array([3, 3, 0])
    (lp_t, _, _), (lp_n, _, _) = (b.step(tokens[rows], b.select(s, rows))
                                  for b, s in zip((torch_backend, numpy_backend), states))
    np.testing.assert_allclose(lp_n, lp_t, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- training and prediction

@pytest.fixture(scope="module")
def reverse_bundle(tmp_path_factory):
    """A small attention GRU trained on the reversal task (a few seconds)."""
    out = tmp_path_factory.mktemp("s2s") / "reverse"
    settings = s2s.Seq2SeqSettings(dataset="reverse", source_level="char", target_level="char", max_source_len=8,
                                   max_target_len=8)
    splits = s2s.generated_splits("reverse", 6000, 300, 300, seed=0)
    source, target = s2s.build_vocabs(splits.train, settings)
    train, val = (s2s.encode_split(p, source, target, settings) for p in (splits.train, splits.val))
    config = ModelConfig(vocab_size=len(source), target_vocab_size=len(target), architecture="encoder_decoder",
                         cell="gru", embedding_dim=16, hidden_size=32, bidirectional=True, attention="luong")
    best = s2s.train(train, val, source, target, config,
                     TrainConfig(epochs=15, batch_size=32, learning_rate=1e-2, seed=0, patience=3, threads=1),
                     settings, out, progress=False)
    return out, best, splits


def test_training_learns_reversal_and_both_engines_agree(reverse_bundle):
    out, best, splits = reverse_bundle
    assert best["exact_match"] > 0.9
    sources = [s for s, _ in splits.test]
    refs = [[t] for _, t in splits.test]
    numpy_model, torch_model = load_predictor(out, engine="numpy"), load_predictor(out, engine="torch")
    greedy_metrics = numpy_model.evaluate(sources, refs)
    assert greedy_metrics["exact_match"] > 0.85  # chance: ~0 (8 letters, lengths 1-8, unseen strings)
    assert torch_model.evaluate(sources, refs)["hypotheses"] == greedy_metrics["hypotheses"]
    beam = numpy_model.evaluate(sources, refs, beam=4)
    assert beam["exact_match"] >= greedy_metrics["exact_match"] - 0.02
    assert numpy_model.translate("abcdefg")[0]["translation"] == "gfedcba"


def test_translate_bad_input(reverse_bundle):
    model = load_predictor(reverse_bundle[0], engine="numpy")
    for text, message in (("", "empty"), ("   ", "empty"), ("zzz", "none of the 3"), ("abcabcabc", "--truncate")):
        with pytest.raises(InputError, match=message):
            model.translate(text)
    result = model.translate("abcxa")[0]
    assert result["unknown"] == 1 and not result["truncated"]
    result = model.translate("abcdabcdab", truncate=True)[0]
    assert result["truncated"] and result["tokens"] == 10
    for options, message in (({"beam": 0}, "beam size"), ({"max_len": 0}, "maximum output length"),
                             ({"max_len": 10 ** 6}, "maximum output length"), ({"alpha": -1.0}, "alpha")):
        with pytest.raises(InputError, match=message):
            model.translate("abc", **options)
    assert len(model.translate("abcdefgh", max_len=3)[0]["translation"]) == 3


def test_bleu_uses_every_reference():
    assert s2s.corpus_bleu(["le chat est sur le tapis ."], [["le chat est sur le tapis ."]]) == pytest.approx(100.0)
    one = s2s.corpus_bleu(["il fait très froid ici ."], [["il fait froid ici ."]])
    two = s2s.corpus_bleu(["il fait très froid ici ."], [["il fait froid ici .", "il fait très froid ici ."]])
    assert one < 100.0 and two == pytest.approx(100.0)


def _cli(*args, stdin=None):
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", *map(str, args)], input=stdin,
                          capture_output=True, timeout=300)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_cli_translate_json_stdin_and_attention_plot(reverse_bundle, tmp_path):
    out = reverse_bundle[0]
    png = tmp_path / "attention.png"
    code, stdout, err = _cli("translate", out, "abcdefg", "--beam", "3", "--plot-attention", png)
    expected = load_predictor(out, engine="numpy").translate("abcdefg", beam=3)[0]["translation"]
    assert code == 0 and stdout.strip() == expected, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, stdout, _ = _cli("translate", out, "-", "--engine", "torch", stdin=b"abc\n\nzz\n")
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert lines[0]["translation"] == "cba" and "empty" in lines[1]["error"] and "none of" in lines[2]["error"]
    assert code == 1


@pytest.mark.parametrize("args,message", [
    (["translate", "{bundle}", ""], "empty"),
    (["translate", "{bundle}", "abcdabcdabcd"], "--truncate"),
    (["translate", "{bundle}", "abc", "--beam", "0"], "beam size"),
    (["train", "seq2seq", "--pairs", "{tmp}/missing.tsv", "--out", "{tmp}/o"], "no pair file"),
    (["train", "seq2seq", "--task", "dates", "--teacher-forcing", "2", "--out", "{tmp}/o"], "teacher forcing"),
])
def test_cli_bad_input_is_one_clear_line(reverse_bundle, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, bundle=reverse_bundle[0]) for a in args]
    code, _, err = _cli(*args)
    assert code != 0 and message in err and "Traceback" not in err


def test_cli_trains_word_level_pairs(tmp_path):
    lines = [f"{a} {b}.\t{b} {a} !\tattribution" for a in ("red", "green", "blue", "big", "old")
             for b in ("cat", "dog", "car", "tree", "house", "boat")]
    (tmp_path / "pairs.tsv").write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
    code, stdout, err = _cli("train", "seq2seq", "--pairs", tmp_path / "pairs.tsv", "--out", tmp_path / "run",
                             "--epochs", "2", "--hidden", "8", "--embedding-dim", "8", "--attention", "bahdanau",
                             "--threads", "1", "--quiet")
    assert code == 0, err
    assert "held-out test (3 sources, greedy)" in stdout and "BLEU" in stdout
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["attention"] == "bahdanau" and config["settings"]["source_level"] == "word"


# --------------------------------------------------------------------------- numpy engine training

@pytest.mark.parametrize("bi", [False, True])
def test_numpy_bptt_equals_torch_autograd(bi):
    import torch.nn.functional as F

    from rnnkit.tasks.seq2seq.numpy_backend import loss_and_grads

    torch.manual_seed(0)
    config = _config("none", "gru", 1, bi)
    model = EncoderDecoder(config).double()
    src, lengths = torch.randint(1, 13, (4, 6)), torch.full((4,), 6)
    src[0, 2] = 0  # a padding id inside a source: its embedding row gets no gradient, as in torch
    tgt_in, tgt_out = torch.randint(2, 11, (4, 5)), torch.randint(3, 11, (4, 5))
    tgt_out[1, 3:] = 0
    loss = F.cross_entropy(model(src, lengths, tgt_in).reshape(-1, 11), tgt_out.reshape(-1), ignore_index=0)
    loss.backward()
    tensors = {k: v.detach().numpy().copy() for k, v in model.shared_parameters().items()}
    value, grads = loss_and_grads(config, tensors, src.numpy(), tgt_in.numpy(), tgt_out.numpy())
    assert value == pytest.approx(loss.item(), abs=1e-12)
    for name, param in model.shared_parameters().items():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), atol=1e-12, rtol=0, err_msg=name)


def test_numpy_engine_trains_reversal_and_torch_loads_it(tmp_path):
    settings = s2s.Seq2SeqSettings(dataset="reverse", source_level="char", target_level="char", max_source_len=8,
                                   max_target_len=8)
    pairs = [(s, t) for s, t in generated.reverse_pairs(3000, seed=5, alphabet="abcd", max_len=4)]
    splits = s2s.Splits(pairs[:2600], pairs[2600:2800], pairs[2800:])
    source, target = s2s.build_vocabs(splits.train, settings)
    train, val = (s2s.encode_split(p, source, target, settings) for p in (splits.train, splits.val))
    config = ModelConfig(vocab_size=len(source), target_vocab_size=len(target), architecture="encoder_decoder",
                         cell="gru", embedding_dim=16, hidden_size=32, bidirectional=True)
    best = s2s.train(train, val, source, target, config,
                     TrainConfig(epochs=8, batch_size=32, learning_rate=1e-2, patience=2), settings, tmp_path,
                     progress=False, engine="numpy")
    assert best["exact_match"] > 0.9  # strings of 1-4 letters from 4: chance of a whole string ~1/85
    sources, refs = [s for s, _ in splits.test], [[t] for _, t in splits.test]
    by_numpy = load_predictor(tmp_path, engine="numpy").evaluate(sources, refs, beam=3)
    by_torch = load_predictor(tmp_path, engine="torch").evaluate(sources, refs, beam=3)
    assert by_numpy["exact_match"] > 0.9 and by_numpy["hypotheses"] == by_torch["hypotheses"]

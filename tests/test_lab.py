"""The RNN lab (rnnkit.lab, rnnkit lab ...): the per-step gradient hook against torch autograd, what the
gradients do at initialisation, the adding problem's data, and the commands on tiny settings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.lab import adding, gradients
from rnnkit.lab.model import SequenceRegressor, init_parameters, mse

CELLS = ("rnn", "lstm", "gru")


def _model(cell, scale=None, forget_bias=0.0, hidden=8, seed=0, dtype=np.float64):
    params = init_parameters(cell, 2, hidden, np.random.default_rng(seed), scale, forget_bias, dtype)
    return SequenceRegressor(cell, params)


@pytest.mark.parametrize("cell", CELLS)
def test_dh_steps_equal_torch_autograd_through_a_loop_of_cells(cell):
    torch = pytest.importorskip("torch")
    T, N, H = 9, 3, 5
    model = _model(cell, scale=1.3, forget_bias=1.0, hidden=H)
    x, y = adding.adding_problem(N, T, np.random.default_rng(1))
    _, dy = mse(model.forward(x), y)
    dh = np.zeros((T, N, H))
    grads = model.backward(dy, dh_steps=dh)

    step = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[cell](2, H).double()
    head = torch.nn.Linear(H, 1).double()
    with torch.no_grad():
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(step, kind).copy_(torch.from_numpy(model.params[f"rnn.{kind}_l0"]))
        head.weight.copy_(torch.from_numpy(model.params["head.weight"]))
        head.bias.copy_(torch.from_numpy(model.params["head.bias"]))
    xs = torch.from_numpy(x.astype(np.float64))
    h, c, hs = torch.zeros(N, H, dtype=torch.float64), torch.zeros(N, H, dtype=torch.float64), []
    for t in range(T):  # the reference semantics: a plain loop, each step's h kept with its gradient
        if cell == "lstm":
            h, c = step(xs[:, t], (h, c))
        else:
            h = step(xs[:, t], h)
        h.retain_grad()
        hs.append(h)
    loss = ((head(h)[:, 0] - torch.from_numpy(y.astype(np.float64))) ** 2).mean()
    loss.backward()

    for t in range(T):
        np.testing.assert_allclose(dh[t], hs[t].grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["rnn.weight_hh_l0"], step.weight_hh.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_gradient_norms_are_by_distance_from_the_last_state():
    model = _model("gru")
    x, y = adding.adding_problem(4, 7, np.random.default_rng(2))
    norms = gradients.gradient_norms(model, x, y)
    _, dy = mse(model.forward(x), y)
    dh = np.zeros((7, 4, 8))
    model.backward(dy, dh_steps=dh)
    assert norms.shape == (7,)
    assert np.isclose(norms[0], np.linalg.norm(dh[-1])) and np.isclose(norms[6], np.linalg.norm(dh[0]))


def test_at_init_a_small_rnn_forgets_where_an_lstm_with_a_forget_bias_does_not():
    x, y = adding.adding_problem(16, 60, np.random.default_rng(3))
    rnn = gradients.gradient_norms(_model("rnn", scale=0.5, hidden=16), x, y)
    lstm = gradients.gradient_norms(_model("lstm", scale=0.5, forget_bias=3.0, hidden=16), x, y)
    rnn_50, lstm_50 = rnn[50] / rnn[1], lstm[50] / lstm[1]
    assert rnn_50 < 1e-3 and rnn_50 < 0.5 ** 40  # at most s = 0.5 per step back, and tanh' <= 1
    assert lstm_50 > 1e-2 and lstm_50 > 1e6 * rnn_50
    assert np.all(np.diff(np.log(rnn[1:])) < 0)  # shrinks at every step back


def test_a_large_recurrent_scale_makes_the_rnn_gradient_grow_with_distance():
    x, y = adding.adding_problem(16, 60, np.random.default_rng(4))
    norms = gradients.gradient_norms(_model("rnn", scale=2.0, hidden=16), x, y)
    assert norms[50] > 100 * norms[1] and all(norms[d + 10] > 1.5 * norms[d] for d in (1, 10, 20, 30, 40))


def test_recurrent_scale_sets_every_singular_value():
    model = _model("gru", scale=1.7, hidden=6)
    for block in np.split(model.params["rnn.weight_hh_l0"], 3):
        np.testing.assert_allclose(np.linalg.svd(block, compute_uv=False), 1.7)


@pytest.mark.parametrize("length", [2, 7, 50])
def test_adding_problem_two_markers_one_per_half_target_their_sum(length):
    x, y = adding.adding_problem(200, length, np.random.default_rng(5))
    assert x.shape == (200, length, 2) and y.shape == (200,)
    numbers, markers = x[:, :, 0], x[:, :, 1]
    assert set(np.unique(markers)) <= {0.0, 1.0} and np.all(markers.sum(axis=1) == 2)
    half = length // 2
    assert np.all(markers[:, :half].sum(axis=1) == 1) and np.all(markers[:, half:].sum(axis=1) == 1)
    assert np.all((numbers >= 0) & (numbers < 1))
    np.testing.assert_allclose(y, (numbers * markers).sum(axis=1), rtol=1e-6)
    again, _ = adding.adding_problem(200, length, np.random.default_rng(5))
    assert np.array_equal(x, again)


def test_always_answering_one_scores_the_baseline():
    _, y = adding.adding_problem(20000, 10, np.random.default_rng(6))
    assert abs(float(np.mean((y - 1.0) ** 2)) - adding.BASELINE_MSE) < 0.01


def test_a_gru_learns_a_short_adding_problem_and_runs_repeat():
    settings = adding.AddingSettings(lengths=(10,), cells=("gru",), steps=150, eval_every=50, test_size=200)
    first, second = adding.run(settings), adding.run(settings)
    assert first["runs"][0]["final_test_mse"] < adding.LEARNED_MSE and first["runs"][0]["learned"]
    assert [r["test_mse"] for r in first["runs"]] == [r["test_mse"] for r in second["runs"]]


def test_a_cell_trains_alike_whichever_other_cells_are_listed():
    alone = adding.AddingSettings(lengths=(8,), cells=("lstm",), steps=20, eval_every=10, test_size=50)
    together = adding.AddingSettings(lengths=(8,), cells=("gru", "lstm"), steps=20, eval_every=10, test_size=50)
    assert adding.run(alone)["runs"][0]["test_mse"] == adding.run(together)["runs"][1]["test_mse"]


def test_the_lab_page_runs(capsys):
    """docs/lab.md: its ```python blocks run, in order, in one namespace."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "lab.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) >= 2
    namespace: dict = {"__name__": "lab_doc"}
    for number, code in enumerate(blocks, start=1):
        exec(compile(code, f"{doc.name} block {number}", "exec"), namespace)
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("page, expected", [
    ("lab-bow.md", "Embedding(8, 4) -> mean over the words (bag of words) -> Dense(3), tanh -> Dense(1)"),
    ("lab-cells.md", "tanh(c) (37, 16)"),
    ("lab-names.md", "Keras gru  = rnnkit"),
])
def test_the_lessons_pages_run(capsys, page, expected):
    """docs/lab-*.md: each page's ```python blocks run, in order, in one namespace, and print what it shows."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / page
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) >= 2
    namespace: dict = {"__name__": "lab_doc"}
    for number, code in enumerate(blocks, start=1):
        try:
            exec(compile(code, f"{doc.name} block {number}", "exec"), namespace)
        except Exception as exc:  # name the block, so a broken snippet is easy to find
            raise AssertionError(f"{doc.name}, code block {number} failed: {exc!r}\n{code}") from exc
    assert expected in capsys.readouterr().out


def test_lab_adding_writes_its_files_and_keeps_the_backend(tmp_path, capsys):
    import matplotlib

    backend = matplotlib.get_backend()
    out = tmp_path / "adding"
    assert main(["lab", "adding", "--length", "10", "--steps", "50", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0.167" in printed and "T=10" in printed and "gru" in printed
    assert sorted(p.name for p in out.iterdir()) == ["adding.json", "adding.png", "adding.txt"]
    assert (out / "adding.png").read_bytes().startswith(b"\x89PNG")
    result = json.loads((out / "adding.json").read_text())
    assert {r["cell"] for r in result["runs"]} == set(CELLS) and result["baseline_mse"] == pytest.approx(1 / 6)
    assert (out / "adding.txt").read_text().startswith("test MSE")
    assert matplotlib.get_backend() == backend

    assert main(["lab", "adding", "--length", "10", "--steps", "5", "--out", str(out)]) == 2  # a run is there
    assert "--overwrite" in capsys.readouterr().err
    assert main(["lab", "adding", "--length", "10", "--steps", "5", "--out", str(out), "--overwrite", "--quiet"]) == 0


def test_lab_gradients_writes_its_files(tmp_path, capsys):
    out = tmp_path / "gradients"
    assert main(["lab", "gradients", "--length", "12", "--train-steps", "10", "--clip-steps", "10",
                 "--out", str(out), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "rnn@init" in table and "gru trained" in table and "no clipping" in table
    assert [line.split()[0] for line in table.splitlines()[2:6]] == ["1", "10", "11", "trained"]
    result = json.loads((out / "gradients.json").read_text())
    assert len(result["relative_norm"]["lstm at init"]) == 12 and result["relative_norm"]["rnn trained"][1] == 1.0
    assert (out / "gradients.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("args, message", [
    (["adding", "--length", "1"], "at least 2"),
    (["adding", "--cells", "lstm", "cnn"], "unknown cell 'cnn'"),
    (["adding", "--steps", "0"], "--steps"),
    (["adding", "--lr", "0"], "--lr"),
    (["gradients", "--length", "2"], "--length"),
    (["gradients", "--clip-norm", "-1"], "--clip-norm"),
    (["gradients", "--recurrent-scale", "inf"], "--recurrent-scale"),
    (["adding", "--forget-bias", "nan"], "--forget-bias"),
    (["gradients", "--out", "{tmp}/file.txt"], "is a file"),
    (["adding", "--out", "{tmp}/other"], "did not write"),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.md").write_text("mine")
    args = [a.format(tmp=tmp_path) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "new")]
    assert main(["lab", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnkit: error:") and "\n" not in err and message in err
    assert not (tmp_path / "new").exists()


# --------------------------------------------------------------------------- rnnkit lab negation

def test_the_negation_probe_set_is_balanced_and_its_order_pairs_are_the_same_bags():
    from collections import Counter

    from rnnkit.data.vocab import tokenize
    from rnnkit.lab import negation

    probes = negation.probe_set()
    assert 80 <= len(probes) <= 120 and len({p.text for p in probes}) == len(probes)
    for part in ("negated", "plain", "order"):
        labels = Counter(p.label for p in probes if p.part == part)
        assert labels["positive"] == labels["negative"] > 0, (part, labels)
    for negated, label, plain in negation.NEGATED:  # the plain counterpart has the other label
        assert label in negation.LABELS and negated != plain
    pairs = [p for p in probes if p.part == "order"]
    for first, second in zip(pairs[::2], pairs[1::2]):
        assert first.pair == second.pair and {first.label, second.label} == set(negation.LABELS)
        assert sorted(tokenize(first.text)) == sorted(tokenize(second.text)), first.text


@pytest.fixture(scope="module")
def bow_bundle(tmp_path_factory):
    """A bag of words (--model bow) trained on the generated reviews the demo bundle learnt from (seconds)."""
    from rnnkit.data.synthetic import write_imdb_layout

    root = tmp_path_factory.mktemp("bow")
    tar = write_imdb_layout(root / "aclImdb_v1.tar.gz", per_split=1500)
    assert main(["train", "imdb", "--data", str(tar), "--out", str(root / "bow"), "--model", "bow", "--epochs", "4",
                 "--hidden", "16", "--embedding-dim", "16", "--batch-size", "32", "--lr", "0.01", "--quiet",
                 "--vocab-size", "0", "--engine", "numpy", "--threads", "1"]) == 0
    return root / "bow"


def test_lab_negation_a_bag_of_words_cannot_see_order_and_a_gru_reads_not(demo_bundle, bow_bundle, capsys):
    gru = demo_bundle[0]
    assert main(["lab", "negation", str(gru), str(bow_bundle), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rnn, bow = result["results"]
    assert rnn["task"] == "sentiment" and bow["task"] == "classify" and "bag of words" in bow["model"]
    assert rnn["probe_count"] == bow["probe_count"] == 70 and len(bow["sentences"]) == 100
    # the same words in another order: the same bag, the same score, so exactly one of each pair is right
    order = [s for s in bow["sentences"] if s["part"] == "order"]
    for first, second in zip(order[::2], order[1::2]):
        assert first["p_positive"] == pytest.approx(second["p_positive"], abs=1e-4)
    assert bow["order"] == 0.5 and bow["order_pairs_right"] == 0
    # the probes whose every word the generated reviews have ("The movie was not good.", "It is good, not bad."
    # and "It is bad, not good."): the GRU learnt there that "not" flips the next word, the bag cannot
    def known(r):
        return [s for s in r["sentences"] if s["unknown"] == 0 and s["part"] != "plain"]

    assert [s["text"] for s in known(rnn)] == [s["text"] for s in known(bow)] and len(known(rnn)) >= 3
    assert all(s["correct"] for s in known(rnn)), known(rnn)
    assert sum(s["correct"] for s in known(bow)) < len(known(bow))
    assert 0 < rnn["unknown_tokens"] == bow["unknown_tokens"] < 1
    assert main(["lab", "negation", str(gru), str(bow_bundle), "--mistakes", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split() == ["bundle", "negated", "plain", "both", "order", "both", "probes", "unknown"]
    assert printed[3].startswith(str(bow_bundle)) and "50.0%" in printed[3] and " 0/20" in printed[3]
    assert sum(line.startswith("  negative") or line.startswith("  positive") for line in printed) == 4


def test_lab_negation_refuses_bundles_that_are_not_negative_positive(tmp_path, capsys):
    from rnnkit.bundle import save_bundle
    from rnnkit.config import ModelConfig
    from rnnkit.data.vocab import Vocab
    from rnnkit.numpy_engine.models import init_parameters

    vocab = Vocab.build({"good": 2, "bad": 2})
    config = ModelConfig(vocab_size=len(vocab), architecture="one_to_one", embedding_dim=4, hidden_size=4)
    tensors = init_parameters(config, np.random.default_rng(0))
    save_bundle(tmp_path / "spam", "classify", config, vocab.to_json(), tensors,
                settings={"labels": ["ham", "spam"], "maxlen": 20, "vocab_size": None}, train={"seed": 0})
    for argv, message in ((["lab", "negation", str(tmp_path / "spam")], "needs the two labels 'negative' and"),
                          (["lab", "negation", str(tmp_path / "nowhere")], "nowhere"),
                          (["lab", "negation", str(tmp_path / "spam"), "--mistakes", "-1"], "--mistakes")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("rnnkit: error:") and "\n" not in err and message in err, err


# --------------------------------------------------------------------------- rnnkit lab cells

def _bundle(path, task, config, vocab, settings):
    from rnnkit.bundle import load_bundle, save_bundle
    from rnnkit.numpy_engine.models import init_parameters

    tensors = init_parameters(config, np.random.default_rng(4))
    save_bundle(path, task, config, vocab, tensors, settings=settings, train={"seed": 0})
    return load_bundle(path)


@pytest.fixture(scope="module")
def cell_bundles(tmp_path_factory):
    """Untrained bundles (what is tested is the arithmetic): a 2-layer LSTM charlm, a 2-layer bidirectional
    GRU classifier, and a bag of words."""
    from rnnkit.config import ModelConfig
    from rnnkit.data.text import CharVocab
    from rnnkit.data.vocab import Vocab
    from rnnkit.tasks.charlm import lm_config

    root = tmp_path_factory.mktemp("cells")
    chars = CharVocab.build('He said "yes" (twice).\nabc' * 3)
    charlm = lm_config(ModelConfig(vocab_size=1, cell="lstm", embedding_dim=5, hidden_size=6, num_layers=2),
                       len(chars))
    words = Vocab.build({w: 2 for w in "the film was not good at all".split()})
    settings = {"labels": ["negative", "positive"], "maxlen": 50, "vocab_size": None}
    gru = ModelConfig(vocab_size=len(words), cell="gru", embedding_dim=5, hidden_size=4, num_layers=2,
                      bidirectional=True)
    bow = ModelConfig(vocab_size=len(words), architecture="one_to_one", embedding_dim=4, hidden_size=4)
    return {"charlm": _bundle(root / "charlm", "charlm", charlm, chars.to_json(), {"seq_len": 16, "text": None}),
            "gru": _bundle(root / "gru", "classify", gru, words.to_json(), settings),
            "bow": _bundle(root / "bow", "classify", bow, words.to_json(), settings)}


def test_cells_an_lstm_units_tanh_c_equals_a_loop_of_torch_lstm_cells(cell_bundles):
    torch = pytest.importorskip("torch")
    from rnnkit.lab import cells
    from rnnkit.torch_engine import build_model, load_tensors

    bundle = cell_bundles["charlm"]
    text = 'He said "yes" (twice).\nab'
    tensors = {k: torch.from_numpy(v.astype(np.float64)) for k, v in bundle.tensors.items()}
    x = tensors["embedding.weight"][torch.from_numpy(bundle_ids(bundle, text))]  # (T, E)
    expected = []
    for layer in range(2):  # the reference semantics: one torch.nn.LSTMCell step at a time
        step = torch.nn.LSTMCell(x.shape[1], 6).double()
        with torch.no_grad():
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(step, kind).copy_(tensors[f"rnn.{kind}_l{layer}"])
        h, c, hs, cs = torch.zeros(1, 6, dtype=torch.float64), torch.zeros(1, 6, dtype=torch.float64), [], []
        for t in range(len(x)):
            h, c = step(x[t:t + 1], (h, c))
            hs.append(h[0])
            cs.append(c[0])
        x = torch.stack(hs)
        expected.append(torch.tanh(torch.stack(cs)).detach().numpy())
    module = load_tensors(build_model(bundle.config).double(), bundle.tensors)  # the loop is the engine's function
    top, _ = module.rnn(module.embedding(torch.from_numpy(bundle_ids(bundle, text))[None]))
    np.testing.assert_allclose(x.detach().numpy(), top[0].detach().numpy(), atol=1e-6)

    for layer in (0, 1):
        result = cells.activations(bundle, text, layer=layer)
        assert result.kind == "tanh(c)" and result.level == "char" and result.tokens == list(text)
        np.testing.assert_allclose(result.values, expected[layer], rtol=1e-10, atol=1e-12)
    assert cells.activations(bundle, text).layer == 1  # the top layer by default


def bundle_ids(bundle, text):
    from rnnkit.data.text import CharVocab

    return CharVocab.from_json(bundle.vocab).encode(text)


@pytest.mark.parametrize("reverse", [False, True])
def test_cells_a_bidirectional_grus_h_equals_the_torch_engines_outputs(cell_bundles, reverse):
    torch = pytest.importorskip("torch")
    from rnnkit.data.vocab import Vocab, tokenize
    from rnnkit.lab import cells
    from rnnkit.torch_engine import build_model, load_tensors

    bundle = cell_bundles["gru"]
    text = "The film was not good, not at all. The unknown word!"
    result = cells.activations(bundle, text, reverse=reverse)
    ids = torch.tensor([Vocab.from_json(bundle.vocab).encode(tokenize(text))])
    module = load_tensors(build_model(bundle.config).double(), bundle.tensors)
    top, _ = module.rnn(module.embedding(ids))  # (1, T, 2H): forward units, then the reverse direction's
    expected = top[0, :, 4:] if reverse else top[0, :, :4]
    assert result.kind == "h" and result.level == "word" and result.tokens == tokenize(text)
    assert result.unknown == 3  # "unknown", "word", "!"
    np.testing.assert_allclose(result.values, expected.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_cells_features_quotes_lines_and_negation_scope():
    from rnnkit.lab import cells

    f = cells.features(list('a"bc"d\nef(g)h'), "char")
    assert f["inside quotes"].tolist() == [0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert f["position in the line"].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5]
    assert f["inside parentheses"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0]
    words = "it was not good at all , but i didn't hate it".split()
    assert cells.features(words, "word")["after a negation"].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1]


def test_lab_cells_writes_a_page_a_picture_and_the_numbers(cell_bundles, tmp_path, capsys):
    from rnnkit.lab import cells

    bundle = cell_bundles["charlm"]
    text = 'He said "yes" (twice).\nabc'
    out = tmp_path / "cells"
    assert main(["lab", "cells", str(bundle.path), "--cell", "2", "--text", text, "--out", str(out), "--top", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("unit 2 of layer 1: tanh(c) over 26 characters (0 unknown)")
    assert "inside quotes: " in printed and "position in the line: " in printed
    assert sorted(p.name for p in out.iterdir()) == ["cells.html", "cells.json", "cells.png"]
    page = (out / "cells.html").read_text()
    assert page.count("<span style=\"background:rgb(") == len(text) + 9  # every character, and the legend's 9
    assert "&quot;" in page and "<script" not in page and "http" not in page  # escaped; self-contained
    assert (out / "cells.png").read_bytes().startswith(b"\x89PNG")
    saved = json.loads((out / "cells.json").read_text())
    expected = cells.activations(bundle, text).values[:, 2]
    np.testing.assert_allclose(saved["activation"], expected, atol=1e-5)
    assert saved["tokens"] == list(text) and len(saved["top"]["inside quotes"]) == 2
    assert main(["lab", "cells", str(bundle.path), "--cell", "2", "--text", "x", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("which, args, message", [
    ("charlm", ["--cell", "6"], "--cell must be in 0..5"),
    ("charlm", ["--cell", "-1"], "--cell must be in 0..5"),
    ("charlm", ["--cell", "0", "--layer", "2"], "--layer must be in 0..1"),
    ("charlm", ["--cell", "0", "--reverse"], "leave out --reverse"),
    ("charlm", ["--cell", "0", "--text", "   "], "the text is empty"),
    ("gru", ["--cell", "0", "--text", ", , ;"], "no words"),
    ("bow", ["--cell", "0"], "no recurrent units"),
    ("charlm", ["--cell", "0", "--file", "{tmp}/missing.txt"], "does not exist"),
    ("charlm", ["--cell", "0", "--top", "-1"], "--top"),
])
def test_lab_cells_bad_input_is_one_line_and_exit_2(cell_bundles, tmp_path, capsys, which, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    if "--text" not in args and "--file" not in args:
        args += ["--text", "the film was good"]
    assert main(["lab", "cells", str(cell_bundles[which].path), *args, "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnkit: error:") and "\n" not in err and message in err, err
    assert not (tmp_path / "new").exists()

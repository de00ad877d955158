"""Word language model (`rnnkit pretrain`, task wordlm): reading documents, the output layers on both engines,
training, resuming, generating, evaluating and the command line."""

from __future__ import annotations

import math
import os
import signal
import tarfile

import numpy as np
import pytest
from safetensors.numpy import load_file

from rnnkit.bundle import load_bundle
from rnnkit.cli import main
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.documents import read_documents
from rnnkit.data.synthetic import write_imdb_layout
from rnnkit.data.vocab import EOS, PAD, UNK, Vocab, tokenize
from rnnkit.errors import ConfigError, DataError, InputError
from rnnkit.numpy_engine import build_model, init_parameters
from rnnkit.numpy_engine.gradcheck import assert_gradients_close
from rnnkit.params import parameter_shapes
from rnnkit.tasks import load_predictor, wordlm
from rnnkit.training.trainer import TrainingInterrupted

torch = pytest.importorskip("torch")

SENTINEL = "zyzzyvaquux"  # only in IMDB's test reviews
# a repetitive text: 300 short documents over 12 words
WORDS = "the cat sat on the mat and the dog ran to the park".split()
TEXT = "\n\n".join(" ".join(WORDS[i % 6:i % 6 + 7]) + (" !" if i % 4 == 0 else "") for i in range(300))


def lm_config(layer: str, V: int = 40, H: int = 16, E: int = 8, cell: str = "lstm", layers: int = 1,
              cutoffs=(6, 20)) -> ModelConfig:
    return ModelConfig(vocab_size=V, output_size=V, architecture="many_to_many", cell=cell, num_layers=layers,
                       embedding_dim=E, hidden_size=H, output_layer=layer,
                       cutoffs=cutoffs if layer == "adaptive" else None)


def _train(tmp_path, name, engine="torch", softmax="auto", resume=False, epochs=3, **model):
    documents = read_documents([tmp_path / "text.txt"], progress=False)
    config = ModelConfig(vocab_size=1, **{"cell": "lstm", "embedding_dim": 16, "hidden_size": 32, **model})
    train = TrainConfig(epochs=epochs, batch_size=8, learning_rate=1e-2, seed=1, threads=1, checkpoint_every=5,
                        patience=0, lr_decay=0.9, clip_norm=1.0)
    settings = wordlm.WordLMSettings(seq_len=16, vocab_size=100, softmax=softmax, precision="fp32")
    return wordlm.train(documents, config, train, settings, tmp_path / name, progress=False, resume=resume,
                        engine=engine)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small LSTM word LM trained on TEXT (adaptive softmax over its 16 ids), a few seconds."""
    root = tmp_path_factory.mktemp("wordlm")
    (root / "text.txt").write_text(TEXT)
    best = _train(root, "lm", softmax="adaptive")
    return root, best


# --------------------------------------------------------------------------- reading documents


def test_a_text_file_is_paragraphs_lines_or_one_document(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffOne two.\nThree!\n\n  \nFour, five?\n".encode())
    by_paragraph = read_documents([path], progress=False)
    assert [[by_paragraph.words[i] for i in d] for d in by_paragraph.docs] == [["one", "two", "three", "!"],
                                                                                ["four", "five", "?"]]
    assert len(read_documents([path], per="line", progress=False).docs) == 3  # blank lines have no words
    assert len(read_documents([path], per="file", progress=False).docs) == 1


def test_a_folder_is_every_txt_file_sorted_one_document_each(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("second\n\nstill second")
    (tmp_path / "1.txt").write_text("first")
    (tmp_path / "notes.md").write_text("never read")
    documents = read_documents([tmp_path], progress=False)
    assert [[documents.words[i] for i in d] for d in documents.docs] == [["first"], ["second", "still", "second"]]
    assert documents.read == {str(tmp_path): 2} and documents.tokens == 4


def test_max_tokens_stops_reading(tmp_path):
    (tmp_path / "a.txt").write_text("a b c\n\nd e f\n\ng h i")
    documents = read_documents([tmp_path / "a.txt"], max_tokens=5, progress=False)
    assert documents.tokens == 5 and documents.truncated and [len(d) for d in documents.docs] == [3, 2]


@pytest.mark.parametrize("content, message", [(b"", "no words"), (b"a\x00b", "NUL byte"),
                                              (b"\xff\xfea\x00", "UTF-16"), (b"caf\xe9", "not UTF-8")])
def test_unusable_text_is_one_clear_error(tmp_path, content, message):
    (tmp_path / "bad.txt").write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_documents([tmp_path / "bad.txt"], progress=False)


def test_missing_path_and_fifo_are_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_documents([tmp_path / "nothing.txt"], progress=False)
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(DataError, match="not a regular file"):
        read_documents([tmp_path], progress=False)  # a FIFO named .txt in a folder: refused, never a hang


@pytest.mark.parametrize("tarball", [True, False])
def test_imdb_pretraining_reads_train_pos_neg_unsup_and_never_test(tmp_path, tarball):
    target = tmp_path / ("aclImdb.tar.gz" if tarball else "imdb")
    write_imdb_layout(target, per_split=20, unsup=10, tarball=tarball, test_word=SENTINEL)
    documents = read_documents([target], progress=False)
    assert documents.read == {"train/neg": 10, "train/pos": 10, "train/unsup": 10}
    assert SENTINEL not in documents.words  # not even read: the test reviews are passed over
    corpus = wordlm.prepare(documents, 1000, 0.1, seed=0)
    assert SENTINEL not in corpus.vocab.tokens and corpus.val_docs == 3 and corpus.held_out == "documents"


def test_a_tarball_that_is_not_aclimdb_is_refused(tmp_path):
    with tarfile.open(tmp_path / "other.tar.gz", "w:gz") as archive:
        (tmp_path / "x.txt").write_text("words")
        archive.add(tmp_path / "x.txt", "x.txt")
    with pytest.raises(DataError, match="aclImdb tarballs only"):
        read_documents([tmp_path / "other.tar.gz"], progress=False)


# --------------------------------------------------------------------------- vocabulary and validation split


def test_vocabulary_is_the_classifiers_kind_with_eos_and_counts_only_training_documents(tmp_path):
    (tmp_path / "a.txt").write_text("\n\n".join(["common words here"] * 30 + ["rareword"]))
    documents = read_documents([tmp_path / "a.txt"], progress=False)
    corpus = wordlm.prepare(documents, 100, 0.2, seed=0)
    assert corpus.vocab.tokens[:3] == (PAD, UNK, EOS) and corpus.vocab.tokens[wordlm.EOS_ID] == EOS
    assert Vocab.from_json(corpus.vocab.to_json()) == corpus.vocab  # what a classifier reads back
    assert tokenize("<eos> end") == ["eos", "end"]  # no text ever reads as the special token
    # validation documents end with <eos>; their words do not shape the vocabulary
    assert corpus.val_ids[-1] == wordlm.EOS_ID and corpus.val_docs == round(31 * 0.2)
    small = wordlm.prepare(documents, 4, 0.2, seed=0)
    assert len(small.vocab) == 4 and small.vocab.tokens[3] in ("common", "words", "here")


def test_too_few_documents_validate_on_the_end_of_the_stream(tmp_path):
    (tmp_path / "a.txt").write_text(" ".join(WORDS * 40))  # one document
    corpus = wordlm.prepare(read_documents([tmp_path / "a.txt"], progress=False), 100, 0.1, seed=0)
    assert corpus.held_out == "tail" and corpus.val_docs == 0 and 40 <= len(corpus.val_ids) <= 60


def test_validation_documents_depend_on_the_seed_only():
    a, b = wordlm.data.split_documents(100, 0.1, 3), wordlm.data.split_documents(100, 0.1, 3)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 10 and not np.array_equal(a, wordlm.data.split_documents(100, 0.1, 4))


# --------------------------------------------------------------------------- output layers, both engines


def test_default_cutoffs_scale_with_the_vocabulary():
    assert wordlm.default_cutoffs(30_000, 512) == [2000, 10000]
    assert wordlm.default_cutoffs(6_000, 512) == [400, 2000]
    assert wordlm.default_cutoffs(100, 8) == [6]  # a projection of 8 // 16 = 0 would be empty: one cluster


def test_numpy_adaptive_log_probabilities_equal_torchs():
    config = lm_config("adaptive", V=50, H=32)
    params = init_parameters(config, np.random.default_rng(0), dtype=np.float64)
    model = build_model(config, params)
    module = torch.nn.AdaptiveLogSoftmaxWithLoss(32, 50, [6, 20], div_value=4.0, head_bias=True).double()
    with torch.no_grad():
        module.head.weight.copy_(torch.from_numpy(params["head.weight"]))
        module.head.bias.copy_(torch.from_numpy(params["head.bias"]))
        for k, tail in enumerate(module.tail):
            tail[0].weight.copy_(torch.from_numpy(params[f"head.tail.{k}.0.weight"]))
            tail[1].weight.copy_(torch.from_numpy(params[f"head.tail.{k}.1.weight"]))
    x = np.random.default_rng(1).standard_normal((40, 32))
    ours = model.head.forward(x)
    theirs = module.log_prob(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
    assert np.abs(ours - theirs).max() < 1e-12  # float64: the same arithmetic
    np.testing.assert_allclose(np.exp(ours).sum(1), 1.0, atol=1e-12)
    y = np.arange(40) % 50
    _, picked = model.head.loss(x, y)
    np.testing.assert_allclose(picked, module(torch.from_numpy(x), torch.from_numpy(y)).output.detach().numpy(),
                               atol=1e-12)


@pytest.mark.parametrize("layer, H", [("dense", 16), ("tied", 16), ("tied", 8), ("adaptive", 16)])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_numpy_and_torch_word_lms_agree_on_the_same_weights(layer, H, cell):
    config = lm_config(layer, H=H, cell=cell, layers=2)
    params = init_parameters(config, np.random.default_rng(0))
    from rnnkit.torch_engine import build_model as torch_model, load_tensors

    module = load_tensors(torch_model(config), params).eval()
    rng = np.random.default_rng(1)
    ids, targets = rng.integers(0, 40, (3, 9)), rng.integers(0, 40, (3, 9))
    ours, state = build_model(config, params).forward(ids)
    _, picked, _ = build_model(config, params).loss(ids, targets, state)
    with torch.no_grad():
        theirs, torch_state = module(torch.from_numpy(ids))
        picked_torch, _ = module(torch.from_numpy(ids), torch_state, targets=torch.from_numpy(targets))
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(picked, picked_torch.numpy(), atol=1e-5, rtol=0)  # from the carried state


@pytest.mark.parametrize("layer, H", [("dense", 6), ("tied", 6), ("tied", 4), ("adaptive", 16)])
def test_numpy_word_lm_gradients_equal_finite_differences(layer, H):
    config = lm_config(layer, V=25, H=H, E=4, cell="gru", cutoffs=(5, 12))
    params = init_parameters(config, np.random.default_rng(2), dtype=np.float64)
    params = {k: v * 2 for k, v in params.items()}
    model = build_model(config, params)
    rng = np.random.default_rng(3)
    ids, targets = rng.integers(1, 25, (2, 5)), rng.integers(0, 25, (2, 5))  # as in text, <pad> (0) is never read
    model.loss(ids, targets)
    analytic = {k: v.copy() for k, v in model.loss_backward().items()}
    assert set(analytic) == set(parameter_shapes(config))
    assert_gradients_close(lambda arrays: model.loss(ids, targets)[0], params, analytic)


def test_embedding_and_recurrent_tensors_are_named_as_a_classifiers():
    lm = wordlm.word_lm_config(ModelConfig(vocab_size=1, cell="lstm", embedding_dim=16, hidden_size=32, num_layers=2),
                               30_000, wordlm.WordLMSettings())
    classifier = ModelConfig(vocab_size=30_000, cell="lstm", embedding_dim=16, hidden_size=32, num_layers=2,
                             bidirectional=False, pooling="mean", output_size=2)
    lm_shapes, classifier_shapes = parameter_shapes(lm), parameter_shapes(classifier)
    shared = {k: v for k, v in classifier_shapes.items() if not k.startswith("head.")}
    assert {k: lm_shapes[k] for k in shared} == shared
    assert lm.output_layer == "adaptive" and lm.cutoffs == (2000, 10000)


def test_output_layer_settings_are_checked():
    with pytest.raises(ConfigError, match="--tie shares the embedding with a full softmax"):
        wordlm.WordLMSettings(softmax="adaptive", tie=True)
    with pytest.raises(ConfigError, match="--cutoffs are the clusters of an adaptive softmax"):
        wordlm.WordLMSettings(softmax="full", cutoffs=[10])
    with pytest.raises(ConfigError, match="cutoffs must increase strictly"):
        ModelConfig(**{**lm_config("adaptive").to_dict(), "cutoffs": [20, 6]})
    with pytest.raises(ConfigError, match="language model"):
        ModelConfig(vocab_size=10, output_layer="tied")  # a many_to_one classifier has a dense head
    small = wordlm.word_lm_config(ModelConfig(vocab_size=1, embedding_dim=8, hidden_size=8), 100, wordlm.WordLMSettings())
    assert small.output_layer == "tied" and "head.projection.weight" not in parameter_shapes(small)
    untied = wordlm.word_lm_config(ModelConfig(vocab_size=1, embedding_dim=8, hidden_size=16), 100,
                                   wordlm.WordLMSettings(tie=False))
    assert untied.output_layer == "dense"


# --------------------------------------------------------------------------- training, resuming, using


def test_a_tiny_model_learns_a_repetitive_text(trained):
    root, best = trained
    vocab_size = len(load_bundle(root / "lm").vocab["tokens"])
    assert best["perplexity"] < 3 < vocab_size and math.isclose(best["perplexity"], math.exp(best["loss"]))
    history = load_predictor(root / "lm").history
    assert {"val_loss", "val_perplexity", "train_loss"} <= set(history[0])


@pytest.mark.parametrize("engine, softmax", [("numpy", "full"), ("numpy", "adaptive"), ("torch", "full")])
def test_both_engines_train_both_softmaxes(tmp_path, engine, softmax):
    (tmp_path / "text.txt").write_text(TEXT)
    best = _train(tmp_path, "lm", engine=engine, softmax=softmax, epochs=2)
    assert best["perplexity"] < 6
    bundle = load_bundle(tmp_path / "lm")
    assert bundle.settings["engine"] == engine and bundle.config.output_layer == ("tied" if softmax == "full" else softmax)
    numpy_model, torch_model = load_predictor(tmp_path / "lm", "numpy"), load_predictor(tmp_path / "lm", "torch")
    assert numpy_model.generate("the cat", 20, 0.8, seed=5) == torch_model.generate("the cat", 20, 0.8, seed=5)
    assert math.isclose(numpy_model.evaluate(TEXT)["loss"], torch_model.evaluate(TEXT)["loss"], rel_tol=1e-5)


def test_bf16_autocast_trains_an_adaptive_softmax(tmp_path):
    (tmp_path / "text.txt").write_text(TEXT)
    documents = read_documents([tmp_path / "text.txt"], progress=False)
    settings = wordlm.WordLMSettings(seq_len=16, vocab_size=100, softmax="adaptive", precision="bf16")
    best = wordlm.train(documents, ModelConfig(vocab_size=1, embedding_dim=16, hidden_size=32),
                        TrainConfig(epochs=1, batch_size=8, learning_rate=1e-2, threads=1), settings,
                        tmp_path / "lm", progress=False)
    assert math.isfinite(best["loss"]) and load_bundle(tmp_path / "lm").settings["precision"] == "bf16"


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_interrupted_then_resumed_ends_with_the_same_weights(tmp_path, monkeypatch, engine):
    (tmp_path / "text.txt").write_text(TEXT)
    _train(tmp_path, "straight", engine=engine, epochs=2)
    reference = _final_state(tmp_path / "straight")

    from rnnkit.numpy_engine.models import ManyToMany as NumpyLM
    from rnnkit.torch_engine.models import ManyToMany as TorchLM

    cls, name = (NumpyLM, "loss") if engine == "numpy" else (TorchLM, "forward")
    real, calls = getattr(cls, name), {"n": 0}

    def signalling(self, *args, **kwargs):
        if kwargs.get("train") if engine == "numpy" else self.training:  # training steps, not validation
            calls["n"] += 1
            if calls["n"] == 7:  # mid epoch 1 (~18 chunks): the next chunk needs the carried state
                os.kill(os.getpid(), signal.SIGINT)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, signalling)
    with pytest.raises(TrainingInterrupted):
        _train(tmp_path, "stopped", engine=engine, epochs=2)
    monkeypatch.setattr(cls, name, real)
    assert any(k.startswith("carry.") for k in _final_state(tmp_path / "stopped"))
    _train(tmp_path, "stopped", engine=engine, epochs=2, resume=True)
    resumed = _final_state(tmp_path / "stopped")
    assert resumed.keys() == reference.keys()
    for key in reference:
        np.testing.assert_array_equal(resumed[key], reference[key], err_msg=key)


def _final_state(out_dir):
    state = load_file(str(out_dir / "checkpoint" / "state.safetensors"))
    return {k: v for k, v in state.items() if k.startswith(("model.", "optim.", "carry."))}


def test_resume_on_other_text_is_refused(tmp_path):
    (tmp_path / "text.txt").write_text(TEXT)
    _train(tmp_path, "run", epochs=1)
    (tmp_path / "text.txt").write_text(TEXT.replace("dog", "cow"))
    with pytest.raises(Exception, match="training data"):
        _train(tmp_path, "run", epochs=2, resume=True)


def test_generation_is_seeded_streams_words_and_checks_its_options(trained):
    model = load_predictor(trained[0] / "lm")
    text = model.generate("The cat", 30, temperature=0.8, seed=3)
    assert text == "".join(model.stream("The cat", 30, temperature=0.8, seed=3))
    assert text[0] in " \n" and set(tokenize(text)) <= set(WORDS) | {"!"}
    assert " !" not in text  # "!" follows its word
    assert model.generate("", 5, seed=1) == model.generate("", 5, seed=1) and not model.generate("", 5, seed=1).startswith(" ")
    assert model.unknown_words("The Zorro cat") == ["zorro"]
    with pytest.raises(InputError, match="length must be a whole number of words"):
        model.generate("the", 0)
    with pytest.raises(InputError, match="top-k must be a whole number in 1"):
        model.generate("the", 5, top_k=10_000)
    with pytest.raises(InputError, match="temperature"):
        model.generate("the", 5, temperature=0)


def test_evaluate_scores_any_text_in_perplexity(trained):
    model = load_predictor(trained[0] / "lm")
    metrics = model.evaluate(TEXT)
    assert metrics["perplexity"] < 3 and metrics["unknown"] == 0 and metrics["tokens"] > 2000
    other = model.evaluate("the cat sat on the zebra")
    assert other["unknown"] == 1 and other["perplexity"] > metrics["perplexity"]
    with pytest.raises(InputError, match="at least 2 words"):
        model.evaluate("...")


# --------------------------------------------------------------------------- the command line


def test_cli_pretrain_generate_evaluate_and_python(tmp_path, capsys):
    imdb = write_imdb_layout(tmp_path / "aclImdb.tar.gz", per_split=60, unsup=60, test_word=SENTINEL)
    out = tmp_path / "imdb-lm"
    args = ["pretrain", "--text", str(imdb), "--out", str(out), "--vocab-size", "200", "--hidden", "32",
            "--embedding-dim", "16", "--batch-size", "8", "--seq-len", "16", "--epochs", "1", "--quiet"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "perplexity" in captured.out and "test/ never read" in captured.err
    bundle = load_bundle(out)
    assert bundle.task == "wordlm" and SENTINEL not in bundle.vocab["tokens"]
    assert bundle.settings["sources"] == {"train/neg": 30, "train/pos": 30, "train/unsup": 60}
    assert main(["generate", str(out), "--prime", "This movie", "--length", "12", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("This movie ")
    assert main(["evaluate", str(out), "--json"]) == 0  # the held-out documents, found again
    assert '"perplexity"' in capsys.readouterr().out
    (tmp_path / "held.txt").write_text("the movie was great\n\nthe film was awful")
    assert main(["evaluate", str(out), "--text", str(tmp_path / "held.txt"), "--quiet"]) == 0
    assert "perplexity" in capsys.readouterr().out
    for argv in (["predict", str(out), "a text"], ["translate", str(out), "a text"]):
        assert main(argv) == 2
        assert "holds a wordlm model" in capsys.readouterr().err
    import rnnkit

    model = rnnkit.train("wordlm", text=tmp_path / "held.txt", out=tmp_path / "py", epochs=1, seq_len=2,
                         batch_size=2, hidden=8, embedding_dim=8, engine="numpy", quiet=True, val_fraction=0.5)
    assert model.task == "wordlm" and model.history


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "text.txt").write_text(TEXT)
    common = ["pretrain", "--text", str(tmp_path / "text.txt"), "--quiet", "--hidden", "8", "--embedding-dim", "8"]
    cases = [(["--out", str(tmp_path / "a"), "--softmax", "adaptive", "--tie"], "--tie shares the embedding"),
             (["--out", str(tmp_path / "b"), "--batch-size", "500"], "needs at least"),
             (["--out", str(tmp_path / "c"), "--text", str(tmp_path / "missing.txt")], "does not exist")]
    for extra, message in cases:
        assert main([*common, *extra]) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("rnnkit: error: ")]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err


def test_the_service_generates_words_as_the_library_does(trained):
    """POST /v1/generate on a word LM: length counts words, the same seed gives the library's text, unknown
    prime words are read as <unk>, skipped or refused, and streaming gives the same words."""
    pytest.importorskip("fastapi")
    import json as json_module
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from rnnkit.serve.app import create_app

    model = load_predictor(trained[0] / "lm")
    with TestClient(create_app(model)) as client:
        generation = client.get("/v1/model").json()["generation"]
        assert generation["unit"] == "words" and generation["vocabulary"] == len(model.vocab)
        answer = client.post("/v1/generate", json={"prime": "the cat zebra", "length": 7, "seed": 3}).json()
        assert answer["text"] == model.generate("the cat zebra", 7, temperature=0.8, seed=3)
        assert answer["length"] == 7 and answer["prime_read"] == 3 and answer["unknown_handling"] == "read as <unk>"
        assert answer["unknown_words"] == [{"word": "zebra", "count": 1}]
        skipped = client.post("/v1/generate", json={"prime": "the cat zebra", "length": 7, "seed": 3,
                                                    "unknown": "skip"}).json()
        assert skipped["text"] == model.generate("the cat", 7, temperature=0.8, seed=3) and skipped["prime_read"] == 2
        refused = client.post("/v1/generate", json={"prime": "zebra", "unknown": "refuse"})
        assert refused.status_code == 422 and "'zebra'" in refused.json()["error"]["message"]
        too_long = client.post("/v1/generate", json={"length": 501})
        assert too_long.status_code == 422 and "words from 1 to 500" in too_long.json()["error"]["message"]
        streamed = client.post("/v1/generate", json={"prime": "the cat zebra", "length": 7, "seed": 3,
                                                     "stream": True})
        lines = [json_module.loads(line) for line in streamed.text.splitlines()]
        assert "".join(line.get("text", "") for line in lines[1:]) == answer["text"]
        assert lines[-1] == {"done": True, "length": 7}


def test_a_classifier_starts_from_the_pretrained_encoder(trained, tmp_path):
    rows = [f"{' '.join(WORDS[i % 5:i % 5 + 4])},{'cat' if 'cat' in WORDS[i % 5:i % 5 + 4] else 'other'}"
            for i in range(60)]
    (tmp_path / "labelled.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    import rnnkit

    model = rnnkit.train("classify", data=tmp_path / "labelled.csv", out=tmp_path / "classifier", epochs=1,
                         init=trained[0] / "lm", engine="numpy", quiet=True, lr=0.0001)
    lm, classifier = load_bundle(trained[0] / "lm"), model.bundle
    assert classifier.vocab == lm.vocab and classifier.settings["init"]["task"] == "wordlm"
    assert classifier.config.hidden_size == lm.config.hidden_size and classifier.config.cell == lm.config.cell
    for name in ("embedding.weight", "rnn.weight_hh_l0"):  # one small step from the language model's
        np.testing.assert_allclose(classifier.tensors[name], lm.tensors[name], atol=1e-2, err_msg=name)

"""The conditional language model (`rnnkit train generate-review`): text from a label, one-to-many.

The label is a one-hot vector into the one_to_many model's bridge (the initial
state); the words are a word LM's (tasks/wordlm's vocabulary, sampling and output
layers). Tiny runs of seconds: what is tested is that each piece is right and the
commands keep their contract, not how well a review reads.
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from safetensors.numpy import load_file

from rnnkit.bundle import load_bundle, save_bundle
from rnnkit.cli import main
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.labelled import LabelledTexts, read_labelled
from rnnkit.data.vocab import EOS, Vocab
from rnnkit.errors import DataError, InputError
from rnnkit.numpy_engine import build_model, init_parameters
from rnnkit.numpy_engine.gradcheck import assert_gradients_close
from rnnkit.params import parameter_shapes
from rnnkit.tasks import condlm, load_predictor
from rnnkit.tasks.wordlm import WordLMSettings, word_lm_config
from rnnkit.training.trainer import TrainingInterrupted

torch = pytest.importorskip("torch")


def one_to_many(layer: str, V: int = 30, H: int = 16, E: int = 8, cell: str = "lstm", layers: int = 1,
                K: int = 2, condition: str = "initial") -> ModelConfig:
    return ModelConfig(vocab_size=V, output_size=V, cell=cell, embedding_dim=E, hidden_size=H, num_layers=layers,
                       bidirectional=False, dropout=0.0, architecture="one_to_many", input_size=K, padding_idx=0,
                       output_layer=layer, cutoffs=(6, 14) if layer == "adaptive" else None, condition=condition)


def _batch(rng, V=30, K=2):
    """A padded batch: features one-hot (3, K), tokens/targets (3, 7) with post-padding, and its mask."""
    lengths = np.array([7, 4, 2])
    tokens, targets = rng.integers(2, V, (3, 7)), rng.integers(1, V, (3, 7))
    mask = np.arange(7)[None, :] < lengths[:, None]
    tokens[~mask], targets[~mask] = 0, 0
    return np.eye(K)[[0, 1, 1]], tokens, targets, mask


def _torch_twin(config, params):
    from rnnkit.torch_engine import build_model as build_torch

    module = build_torch(config).double().eval()
    with torch.no_grad():
        for name, p in module.shared_parameters().items():
            p.copy_(torch.from_numpy(params[name]))
    return module


# --------------------------------------------------------------------------- the engines


EVERY_STEP_CASES = [(layer, cell, 1 + (i % 2)) for i, (layer, cell) in
                    enumerate((layer, cell) for layer in ("dense", "tied", "adaptive") for cell in ("rnn", "lstm", "gru"))]


@pytest.mark.parametrize("layer, cell, layers, condition", [
    ("dense", "gru", 1, "initial"), ("tied", "lstm", 2, "initial"), ("adaptive", "lstm", 1, "initial"),
    ("adaptive", "rnn", 2, "initial"), *[(*case, "every_step") for case in EVERY_STEP_CASES]])
def test_numpy_and_torch_agree_on_the_masked_loss_and_every_gradient_in_float64(layer, cell, layers, condition):
    config = one_to_many(layer, cell=cell, layers=layers, condition=condition)
    params = init_parameters(config, np.random.default_rng(0), dtype=np.float64)
    E, K = config.embedding_dim, config.input_size
    assert params["rnn.weight_ih_l0"].shape[1] == (E + K if condition == "every_step" else E)
    features, tokens, targets, mask = _batch(np.random.default_rng(1))
    model = build_model(config, params)
    loss, log_p, _ = model.loss(features, tokens, targets, mask)
    grads = model.loss_backward()
    assert set(grads) == set(parameter_shapes(config)) and "bridge.weight" in grads
    assert np.all(log_p[~mask] == 0) and np.isclose(loss, -log_p[mask].mean())

    module = _torch_twin(config, params)
    log_p_t, _ = module(torch.from_numpy(features), torch.from_numpy(tokens), targets=torch.from_numpy(targets))
    m = torch.from_numpy(mask)
    loss_t = -(log_p_t * m).sum() / m.sum()
    loss_t.backward()
    assert abs(loss - loss_t.item()) < 1e-12
    np.testing.assert_allclose(log_p[mask], log_p_t.detach().numpy()[mask], atol=1e-12, rtol=0)
    for name, p in module.shared_parameters().items():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-12, rtol=0, err_msg=name)


@pytest.mark.parametrize("layer", ["dense", "tied", "adaptive"])
def test_numpy_masked_loss_gradients_equal_finite_differences(layer):
    config = one_to_many(layer, V=20, H=16, E=4, cell="gru")
    config = ModelConfig(**{**config.to_dict(), "cutoffs": [5, 12] if layer == "adaptive" else None})
    params = {k: v * 2 for k, v in init_parameters(config, np.random.default_rng(2), dtype=np.float64).items()}
    model = build_model(config, params)
    features, tokens, targets, mask = _batch(np.random.default_rng(3), V=20)
    model.loss(features, tokens, targets, mask)
    analytic = {k: v.copy() for k, v in model.loss_backward().items()}
    assert_gradients_close(lambda arrays: model.loss(features, tokens, targets, mask)[0], params, analytic)


@pytest.mark.parametrize("layer, cell, layers", EVERY_STEP_CASES)
def test_every_step_gradients_equal_finite_differences_the_label_vector_included(layer, cell, layers):
    config = one_to_many("dense", V=12, H=6, E=3, cell=cell, layers=layers, condition="every_step")
    config = ModelConfig(**{**config.to_dict(), "output_layer": layer, "cutoffs": [6] if layer == "adaptive" else None})
    params = {k: v * 2 for k, v in init_parameters(config, np.random.default_rng(2), dtype=np.float64).items()}
    model = build_model(config, params)
    features, tokens, targets, mask = _batch(np.random.default_rng(3), V=12)
    arrays = dict(params, features=features * 0.7 + 0.2)  # not one-hot: every entry's gradient is checked

    def loss(a):
        return model.loss(a["features"], tokens, targets, mask)[0]

    loss(arrays)
    analytic = {k: v.copy() for k, v in model.loss_backward().items()}
    assert analytic.keys() == parameter_shapes(config).keys()
    analytic["features"] = model.features_gradient.copy()  # through the bridge and through every step's input
    assert_gradients_close(loss, arrays, analytic)


def test_every_step_reads_the_label_beside_each_word_and_decode_needs_it():
    config = one_to_many("tied", cell="gru", condition="every_step")
    params = init_parameters(config, np.random.default_rng(0), dtype=np.float64)
    model = build_model(config, params)
    features, tokens, _, _ = _batch(np.random.default_rng(5))
    state = model.initial_state(features)
    with pytest.raises(ValueError, match=r"give features of shape \(3, 2\) to decode; got None"):
        model.decode(tokens, state)
    with pytest.raises(ValueError, match="conditioned at every step"):
        _torch_twin(config, params).decode(torch.from_numpy(tokens), None)
    # from the same initial state, the label read at each step still changes what follows
    same, _ = model.decode(tokens, state, features)
    other, _ = model.decode(tokens, state, features[:, ::-1].copy())
    assert np.abs(same - other).max(axis=2).min() > 1e-6  # at every step of every row
    # without the label columns of weight_ih_l0 the model is the initial-state model with those weights
    E = config.embedding_dim
    initial = ModelConfig(**{**config.to_dict(), "condition": "initial"})
    narrowed = dict(params, **{"rnn.weight_ih_l0": np.ascontiguousarray(params["rnn.weight_ih_l0"][:, :E])})
    params["rnn.weight_ih_l0"][:, E:] = 0.0
    np.testing.assert_allclose(build_model(config, params).forward(features, tokens)[0],
                               build_model(initial, narrowed).forward(features, tokens)[0], atol=1e-14, rtol=0)


def test_padding_changes_nothing_the_mask_keeps():
    config = one_to_many("adaptive")
    model = build_model(config, init_parameters(config, np.random.default_rng(0), dtype=np.float64))
    features, tokens, targets, mask = _batch(np.random.default_rng(4))
    short, _, _ = model.loss(features[1:2], tokens[1:2, :4], targets[1:2, :4])
    _, log_p, _ = model.loss(features, tokens, targets, mask)
    assert np.isclose(short, -log_p[1, :4].mean())


@pytest.mark.parametrize("condition", ["initial", "every_step"])
def test_decoding_step_by_step_from_the_label_state_equals_teacher_forcing(condition):
    config = one_to_many("tied", cell="lstm", layers=2, condition=condition)
    params = init_parameters(config, np.random.default_rng(0), dtype=np.float64)
    model, module = build_model(config, params), _torch_twin(config, params)
    features, tokens, _, _ = _batch(np.random.default_rng(5))
    whole, _ = model.forward(features, tokens)
    state, state_t = model.initial_state(features), module.initial_state(torch.from_numpy(features))
    pieces, pieces_t = [], []
    for t in range(tokens.shape[1]):
        logits, state = model.decode(tokens[:, t:t + 1], state, features)
        pieces.append(logits)
        with torch.no_grad():
            logits_t, state_t = module.decode(torch.from_numpy(tokens[:, t:t + 1]), state_t, torch.from_numpy(features))
        pieces_t.append(logits_t.numpy())
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, atol=1e-12, rtol=0)
    np.testing.assert_allclose(np.concatenate(pieces_t, axis=1), whole, atol=1e-12, rtol=0)
    with torch.no_grad():
        by_torch, _ = module(torch.from_numpy(features), torch.from_numpy(tokens))
    np.testing.assert_allclose(by_torch.numpy(), whole, atol=1e-12, rtol=0)
    greedy = model.generate(features, bos=2, steps=6)  # its stepper feeds the label too: the same as decode
    assert greedy.tolist() == module.generate(torch.from_numpy(features), 2, 6).tolist()
    again, _ = model.forward(features, np.concatenate([np.full((3, 1), 2), greedy[:, :-1]], axis=1))
    assert again.argmax(-1).tolist() == greedy.tolist()


# --------------------------------------------------------------------------- data, training, generating


GOOD = ["great", "wonderful", "superb", "lovely", "brilliant"]
BAD = ["awful", "boring", "dull", "terrible", "bad"]
SHARED = ["the", "film", "was", "and", "acting", "plot"]


def reviews(count: int = 240, seed: int = 0) -> LabelledTexts:
    """Texts whose words say their label: a positive one draws from GOOD and SHARED, a negative one from BAD
    and SHARED, and each starts with a word of its own side."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(count):
        label = ("negative", "positive")[i % 2]
        own = GOOD if label == "positive" else BAD
        words = [own[rng.integers(len(own))]] + [(own + SHARED)[rng.integers(len(own) + len(SHARED))]
                                                 for _ in range(rng.integers(4, 12))]
        texts.append(" ".join(words))
        labels.append(label)
    return LabelledTexts(texts, labels, "generated reviews")


def write_csv(path, data: LabelledTexts):
    path.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in zip(data.texts, data.labels)))
    return path


def late_reviews(count: int = 240, seed: int = 0) -> LabelledTexts:
    """Texts that say their label only at the end: 8 to 11 words drawn from FILLERS (alike for both labels),
    then 3 of the label's own side. A model must carry the label across the fillers to end a text right."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(count):
        label = ("negative", "positive")[i % 2]
        own = GOOD if label == "positive" else BAD
        texts.append(" ".join([*rng.choice(FILLERS, int(rng.integers(8, 12))), *rng.choice(own, 3)]))
        labels.append(label)
    return LabelledTexts(texts, labels, "generated late reviews")


FILLERS = SHARED + ["a", "story"]


def _train(out, engine="torch", epochs=3, resume=False, data=None, condition="every_step", max_len=12, **overrides):
    data = data or reviews()
    settings = condlm.CondLMSettings(labels=("negative", "positive"), max_len=max_len, softmax="full",
                                     condition=condition)
    config = ModelConfig(vocab_size=1, output_size=1, cell="lstm", embedding_dim=16, hidden_size=32, dropout=0.0,
                         architecture="many_to_many")
    train = TrainConfig(**{"epochs": epochs, "batch_size": 16, "learning_rate": 0.01, "validation_fraction": 0.1,
                           "seed": 0, "threads": 1, "checkpoint_every": 0, "patience": 0, **overrides})
    return condlm.train(data, config, train, settings, out, progress=False, engine=engine, resume=resume)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("condlm")
    best = _train(root / "gen", epochs=6)
    return root / "gen", best


def _share_of(words, text):
    tokens = text.split()
    return sum(t in words for t in tokens) / max(len(tokens), 1)


def test_batches_read_each_text_from_eos_and_end_it_with_eos_when_it_fits():
    docs = [np.array([5, 6, 7], np.int32), np.array([8], np.int32)]
    batch = condlm.make_batch(docs, np.array([1, 0]), max_len=3)
    assert batch.inputs.tolist() == [[2, 5, 6], [2, 8, 0]]     # <eos> first; padded with <pad>
    assert batch.targets.tolist() == [[5, 6, 7], [8, 2, 0]]    # a cut text has no <eos>; one that fits does
    assert batch.mask.tolist() == [[True] * 3, [True, True, False]]
    batches = condlm.text_batches(docs * 5, np.array([1, 0] * 5), 3, 4, np.random.default_rng(0))
    assert sum(len(b.labels) for b in batches) == 10


def test_labels_are_checked_and_texts_without_words_left_out():
    data = LabelledTexts(["good film", "... ,", "bad film"] * 10, ["pos", "neg", "neg"] * 10, "x")
    corpus = condlm.prepare(data, ("neg", "pos"), 100, 0.2, 0)
    assert corpus.skipped == 10 and len(corpus.train_docs) + len(corpus.val_docs) == 20
    with pytest.raises(DataError, match="not among neg, other"):
        condlm.prepare(data, ("neg", "other"), 100, 0.2, 0)
    with pytest.raises(DataError, match="too few to hold"):
        condlm.prepare(LabelledTexts(["a b", "c d"], ["x", "y"], "x"), ("x", "y"), 100, 0.1, 0)
    with pytest.raises(Exception, match="labels must be 2"):
        condlm.CondLMSettings(labels=("only",))
    with pytest.raises(Exception, match=r"condition must be one of initial, every_step \(--condition "
                                        r"initial\|every-step\); got 'first'"):
        condlm.CondLMSettings(labels=("a", "b"), condition="first")
    assert condlm.CondLMSettings(labels=("a", "b")).condition == "every_step"
    assert condlm.CondLMSettings.from_bundle({"labels": ["a", "b"], "max_len": 5}).condition == "initial"  # older


def test_a_tiny_model_learns_and_the_label_changes_what_it_writes(trained):
    out, best = trained
    # 19 ids; a text draws each word from 11 (its label's 5 and 6 shared): a model that knew the label and no
    # more scores about 11, one that ignored it about 16
    assert len(load_bundle(out).vocab["tokens"]) == 19 and best["perplexity"] < 12.5
    model = load_predictor(out)
    assert model.task == "condlm" and model.labels == ("negative", "positive")
    assert model.bundle.config.architecture == "one_to_many" and model.bundle.config.input_size == 2
    good = model.generate_many("positive", 20, length=10, temperature=0.8, seed=0)
    bad = model.generate_many("negative", 20, length=10, temperature=0.8, seed=0)  # the same draws of the rng
    # its label's words are about half of a text (the first, then 5 in 11); a model that ignored the label
    # would write about a quarter of each side's
    assert np.mean([_share_of(GOOD, t) for t in good]) > 0.35 and np.mean([_share_of(BAD, t) for t in good]) < 0.1
    assert np.mean([_share_of(BAD, t) for t in bad]) > 0.35 and np.mean([_share_of(GOOD, t) for t in bad]) < 0.1
    assert all(t.split()[0] in GOOD for t in good[:10])  # the first word, read straight from the label's state
    history = model.history
    assert {"val_loss", "val_perplexity", "train_loss"} <= set(history[0])


def _own_share(model, count=30, length=16):
    """Of the label words (GOOD or BAD) in `count` texts written for each label, the share from that label's own
    side: about 0.5 for a model that forgot its label."""
    own = other = 0
    for label, mine, theirs in (("positive", GOOD, BAD), ("negative", BAD, GOOD)):
        for text in model.generate_many(label, count, length=length, temperature=0.8, seed=0):
            own += sum(w in mine for w in text.split())
            other += sum(w in theirs for w in text.split())
    assert own + other >= count  # the texts do end in label words
    return own / (own + other)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_conditioned_at_every_step_the_label_survives_words_that_do_not_say_it(tmp_path, engine):
    shares = {}
    for condition in ("every_step", "initial"):  # the same data, model size, seed and steps
        _train(tmp_path / condition, engine=engine, epochs=6, data=late_reviews(), condition=condition, max_len=16)
        model = load_predictor(tmp_path / condition)
        assert model.bundle.config.condition == model.settings.condition == condition
        shares[condition] = _own_share(model)
    # measured: every_step 0.98 (torch) / 0.99 (numpy); initial 0.45 / 0.47, chance, after 8-11 fillers
    assert shares["every_step"] > 0.9, shares
    assert shares["initial"] < 0.75, shares


def test_generation_is_seeded_ends_at_eos_and_is_the_same_on_both_engines(trained):
    out, _ = trained
    by_numpy, by_torch = load_predictor(out), load_predictor(out, engine="torch")
    text = by_numpy.generate("positive", length=40, temperature=0.8, seed=3)
    assert text == by_numpy.generate("positive", length=40, temperature=0.8, seed=3)
    assert text == by_torch.generate("positive", length=40, temperature=0.8, seed=3)
    assert 1 <= len(text.split()) < 40  # the texts it learned end within 12 words: so do its own
    assert by_numpy.generate_many("positive", 3, length=40, temperature=0.8, seed=3)[0] == text
    primed = by_numpy.generate("negative", "the film", length=5, seed=1)
    assert primed.startswith(" ") and len(primed.split()) <= 5


def test_bad_generation_options_are_one_clear_error(trained):
    model = load_predictor(trained[0])
    with pytest.raises(InputError, match=r"label 'meh': this model writes texts of the labels negative, positive; "
                                         r"give one with --label negative\|positive"):
        model.generate("meh")
    with pytest.raises(InputError, match="length must be"):
        model.generate("positive", length=0)
    with pytest.raises(InputError, match="count must be"):
        model.generate_many("positive", 0)


def test_the_numpy_engine_trains_it_too(tmp_path):
    best = _train(tmp_path / "np", engine="numpy", epochs=2)
    assert np.isfinite(best["loss"]) and load_bundle(tmp_path / "np").train["engine"] == "numpy"


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_interrupted_then_resumed_ends_with_the_same_weights(tmp_path, monkeypatch, engine):
    _train(tmp_path / "straight", engine=engine, epochs=2)
    reference = _final_state(tmp_path / "straight")

    from rnnkit.numpy_engine.models import OneToMany as NumpyModel
    from rnnkit.torch_engine.models import OneToMany as TorchModel

    cls, name = (NumpyModel, "loss") if engine == "numpy" else (TorchModel, "forward")
    real, calls = getattr(cls, name), {"n": 0}

    def signalling(self, *args, **kwargs):
        if kwargs.get("train") if engine == "numpy" else self.training:  # training steps, not validation
            calls["n"] += 1
            if calls["n"] == 5:  # mid epoch 0 (14 batches)
                os.kill(os.getpid(), signal.SIGINT)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, signalling)
    with pytest.raises(TrainingInterrupted):
        _train(tmp_path / "stopped", engine=engine, epochs=2)
    monkeypatch.setattr(cls, name, real)
    _train(tmp_path / "stopped", engine=engine, epochs=2, resume=True)
    resumed = _final_state(tmp_path / "stopped")
    assert resumed.keys() == reference.keys()
    for key in reference:
        np.testing.assert_array_equal(resumed[key], reference[key], err_msg=key)


def _final_state(out_dir):
    state = load_file(str(out_dir / "checkpoint" / "state.safetensors"))
    return {k: v for k, v in state.items() if k.startswith(("model.", "optim."))}


def test_resume_on_other_texts_is_refused(tmp_path):
    _train(tmp_path / "run", epochs=1)
    with pytest.raises(Exception, match="training data"):
        _train(tmp_path / "run", epochs=2, resume=True, data=reviews(seed=1))


# --------------------------------------------------------------------------- the command line


def test_train_generate_review_reads_labelled_files_and_generate_takes_a_label(tmp_path, capsys):
    data = write_csv(tmp_path / "reviews.csv", reviews())
    code = main(["train", "generate-review", "--data", str(data), "--out", str(tmp_path / "gen"), "--epochs", "2",
                 "--hidden", "16", "--embedding-dim", "8", "--max-len", "12", "--batch-size", "16", "--quiet",
                 "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "best validation perplexity" in out and "rnnkit generate" in out and "rnnkit lab judge" in out
    bundle = load_bundle(tmp_path / "gen")
    assert bundle.task == "condlm" and bundle.settings["labels"] == ["negative", "positive"]
    assert bundle.config.condition == bundle.settings["condition"] == "every_step"  # the default, recorded
    assert bundle.tensors["rnn.weight_ih_l0"].shape == (4 * 16, 8 + 2)
    assert bundle.settings["label_field"] == "label" and bundle.settings["train_texts"]["positive"] > 100
    assert main(["generate", str(tmp_path / "gen"), "--label", "positive", "--length", "8", "--seed", "2"]) == 0
    first = capsys.readouterr().out
    assert first.strip() and len(first.split()) <= 8
    assert main(["generate", str(tmp_path / "gen"), "--label", "positive", "--length", "8", "--seed", "2",
                 "--engine", "torch", "--prime", "the film"]) == 0
    assert capsys.readouterr().out.startswith("the film ")


def test_initial_state_bundles_old_and_new_train_generate_and_are_judged(tmp_path, classifier, capsys):
    data = write_csv(tmp_path / "reviews.csv", reviews())
    assert main(["train", "generate-review", "--data", str(data), "--out", str(tmp_path / "gen"), "--epochs", "2",
                 "--hidden", "16", "--embedding-dim", "8", "--max-len", "12", "--batch-size", "16", "--quiet",
                 "--threads", "1", "--condition", "initial"]) == 0
    bundle = load_bundle(tmp_path / "gen")
    assert bundle.config.condition == bundle.settings["condition"] == "initial"
    assert bundle.tensors["rnn.weight_ih_l0"].shape == (4 * 16, 8)
    # a bundle written before the option: neither its config nor its settings name a condition
    document = json.loads((tmp_path / "gen" / "config.json").read_text())
    del document["model"]["condition"], document["settings"]["condition"]
    (tmp_path / "gen" / "config.json").write_text(json.dumps(document))
    old = load_predictor(tmp_path / "gen")
    assert old.bundle.config.condition == old.settings.condition == "initial"
    assert old.generate("positive", length=8, seed=2) == load_predictor(tmp_path / "gen", "torch").generate(
        "positive", length=8, seed=2)
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "gen"), "--label", "negative", "--length", "8", "--seed", "2"]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["lab", "judge", str(tmp_path / "gen"), str(classifier), "--per-label", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["texts"] == 8
    from rnnkit.cli import build_parser

    base = ["train", "generate-review", "--data", "x", "--out", "y"]
    assert build_parser().parse_args(base).condition == "every-step"  # the default
    assert build_parser().parse_args([*base, "--condition", "every_step"]).condition == "every-step"  # as in Python
    with pytest.raises(SystemExit):  # argparse's own refusal
        main(["train", "generate-review", "--data", str(data), "--out", str(tmp_path / "x"), "--condition", "always"])
    assert "--condition: invalid choice: 'always'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--label", "meh"], "label 'meh': this model writes texts of the labels negative, positive; give one with "
                         "--label negative|positive"),
    ([], "no label: this model writes texts of the labels negative, positive"),
    (["--label", "positive", "--temperature", "0"], "temperature must be"),
])
def test_bad_generate_options_are_one_line_and_exit_2(trained, capsys, argv, message):
    assert main(["generate", str(trained[0]), "--length", "5", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_aclimdb_trains_on_the_train_split_with_its_labels(tmp_path, capsys):
    from rnnkit.data.synthetic import write_imdb_layout

    tarball = write_imdb_layout(tmp_path / "aclImdb_v1.tar.gz", per_split=40, unsup=10, test_word="zzsentinel")
    code = main(["train", "generate-review", "--data", str(tarball), "--out", str(tmp_path / "imdb"), "--epochs",
                 "1", "--hidden", "8", "--embedding-dim", "8", "--max-len", "20", "--quiet", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    bundle = load_bundle(tmp_path / "imdb")
    assert bundle.settings["labels"] == ["negative", "positive"]
    counts = {k: bundle.settings["train_texts"][k] + bundle.settings["val_texts"][k] for k in ("negative", "positive")}
    assert sum(counts.values()) == 40 and min(counts.values()) > 0  # the train split's 40 labelled reviews only
    assert "zzsentinel" not in bundle.vocab["tokens"]  # test/ never read
    assert main(["train", "generate-review", "--data", str(tarball), "--out", str(tmp_path / "x"),
                 "--text-field", "review"]) == 2
    assert "leave them out" in capsys.readouterr().err


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, trained):
    """A tiny classify bundle trained on the same kind of texts (seconds)."""
    root = tmp_path_factory.mktemp("judge")
    data = write_csv(root / "reviews.csv", reviews(seed=3))
    assert main(["train", "classify", "--data", str(data), "--out", str(root / "clf"), "--epochs", "4", "--hidden",
                 "8", "--embedding-dim", "8", "--quiet", "--threads", "1", "--lr", "0.01"]) == 0
    return root / "clf"


def test_judge_counts_how_often_the_classifier_agrees_with_the_label(trained, classifier):
    from rnnkit.lab.judge import judge

    generator, clf = load_predictor(trained[0]), load_predictor(classifier)
    result = judge(generator, clf, per_label=15, length=10, seed=0)
    assert set(result["per_label"]) == {"negative", "positive"} and result["texts"] == 30
    for label, r in result["per_label"].items():
        assert r["texts"] == 15 and sum(r["labelled_as"].values()) == 15 and len(r["examples"]) == 3
        assert r["agreement"] == r["labelled_as"].get(label, 0) / 15
    assert result["agreement"] == np.mean([r["agreement"] for r in result["per_label"].values()])
    assert result["agreement"] > 0.8  # the texts say their label in their words; a label-blind model: about 0.5
    assert result == {**judge(generator, clf, per_label=15, length=10, seed=0), "seconds": result["seconds"]}


def test_lab_judge_prints_a_table_or_json_and_refuses_bundles_that_do_not_fit(trained, classifier, tmp_path, capsys):
    assert main(["lab", "judge", str(trained[0]), str(classifier), "--per-label", "4", "--length", "6"]) == 0
    out = capsys.readouterr().out
    assert "overall" in out and "[positive]" in out and "as asked" in out
    assert main(["lab", "judge", str(trained[0]), str(classifier), "--per-label", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["texts"] == 8 and 0 <= result["agreement"] <= 1
    other = write_csv(tmp_path / "other.csv", LabelledTexts(["a b", "c d"] * 20, ["x", "y"] * 20, "o"))
    assert main(["train", "classify", "--data", str(other), "--out", str(tmp_path / "xy"), "--epochs", "1",
                 "--hidden", "4", "--embedding-dim", "4", "--quiet", "--threads", "1"]) == 0
    capsys.readouterr()
    for argv, message in (([str(trained[0]), str(tmp_path / "xy")], "lacks the generator's label(s) negative, positive"),
                          ([str(classifier), str(classifier)], "holds a classify model, but rnnkit generate needs"),
                          ([str(trained[0]), str(trained[0])], "holds a condlm model, but rnnkit predict needs"),
                          ([str(trained[0]), str(classifier), "--per-label", "0"], "--per-label must be")):
        assert main(["lab", "judge", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_read_labelled_and_generate_review_agree_on_the_labels(tmp_path):
    data = read_labelled(write_csv(tmp_path / "r.csv", reviews(40)))
    assert data.classes == ["negative", "positive"]
    with pytest.raises(DataError, match="one label per text"):
        condlm.prepare(LabelledTexts(["a b"] * 4, [("x", "y")] * 4, "m"), ("x", "y"), 10, 0.25, 0)


def test_serve_refuses_a_conditional_lm_in_one_line(trained, capsys):
    pytest.importorskip("uvicorn")
    assert main(["serve", str(trained[0]), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "does not serve yet; use rnnkit generate" in err and "--label positive" in err
    assert len(err.strip().splitlines()) == 1


def test_label_is_refused_for_a_language_model_without_labels(tmp_path, capsys):
    words = Vocab.build({"a": 3, "good": 2, "film": 2}, specials=[EOS])
    config = word_lm_config(ModelConfig(vocab_size=1, cell="gru", embedding_dim=4, hidden_size=4), len(words),
                            WordLMSettings(softmax="full"))
    save_bundle(tmp_path / "wordlm", "wordlm", config, words.to_json(),
                init_parameters(config, np.random.default_rng(0)), settings={"seq_len": 8, "text": None})
    assert main(["generate", str(tmp_path / "wordlm"), "--label", "positive", "--length", "3"]) == 2
    err = capsys.readouterr().err
    assert "holds a wordlm model: leave --label out" in err and len(err.strip().splitlines()) == 1

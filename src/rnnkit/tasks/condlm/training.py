"""Training a conditional LM (one-to-many): the task's parts for `rnnkit.training.fit`.

Key: N batch (texts), T time steps, K labels, H hidden size, V vocabulary.

Pipeline: labelled texts -> word ids (a word LM's vocabulary) -> each epoch
batches of whole texts of similar length -> label one-hot v (N, K) -> tanh(bridge)
-> initial state of every layer -> embedding of <eos> w_1 .. (teacher forcing),
with v beside every word's embedding (condition every_step, the default; not
with condition initial) -> stacked rnn | lstm | gru -> output layer at every
step (a full softmax tied to the embedding, or an adaptive softmax) -> -log
p(next word), padding masked out. Validation scores the held-out texts from
their own labels' states: nats per token and perplexity. No state is carried
between batches: every text starts from its label.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.labelled import LabelledTexts
from rnnkit.errors import ConfigError
from rnnkit.tasks.condlm.data import check_layout, one_hot, prepare, text_batches
from rnnkit.tasks.condlm.engines import bundle_functions, score_batches
from rnnkit.tasks.condlm.sampling import FINISHED, sample_rows
from rnnkit.tasks.condlm.settings import CondLMSettings, condlm_config
from rnnkit.tasks.lm import autocast, resolve_precision
from rnnkit.tasks.wordlm.sampling import detokenize, start_ids
from rnnkit.training.fit import EngineParts, TaskTraining, fingerprint, fit

SAMPLE_WORDS = 30  # length of the samples shown at each epoch's end, one per label


class CondLMTraining(TaskTraining):
    """Labelled texts -> a conditional LM. A seeded share of the texts validates (`validation_fraction`,
    `seed`); the vocabulary is the most frequent words of the others; `model_config`'s sizes and output layer
    are set from it and its input is one-hot over `settings.labels`."""

    task = "condlm"

    def __init__(self, data: LabelledTexts, model_config: ModelConfig, settings: CondLMSettings, batch_size: int,
                 validation_fraction: float, seed: int) -> None:
        corpus = prepare(data, settings.labels, settings.vocab_size, validation_fraction, seed)
        check_layout(corpus)
        self.corpus, self.word_vocab, self.vocab = corpus, corpus.vocab, corpus.vocab.to_json()
        self.model_config = condlm_config(model_config, len(corpus.vocab), settings)
        self.cond_settings, self.batch_size = settings, batch_size
        self.val_batches = text_batches(corpus.val_docs, corpus.val_labels, settings.max_len, batch_size, None)
        self.settings = {**asdict(settings), "labels": list(settings.labels), "source": data.source, "train_texts": corpus.counts("train"),
                         "val_texts": corpus.counts("val"), "skipped_texts": corpus.skipped,
                         "train_tokens": int(sum(min(len(d) + 1, settings.max_len) for d in corpus.train_docs))}

    def fingerprint(self) -> str:
        c = self.corpus
        return fingerprint(c.train_docs, c.train_labels, c.val_docs, c.val_labels, list(self.word_vocab.tokens))

    def batches(self, epoch: int, rng: np.random.Generator):
        return text_batches(self.corpus.train_docs, self.corpus.train_labels, self.cond_settings.max_len,
                            self.batch_size, rng)

    def validate(self, model, engine: str) -> dict:
        start, step, score = bundle_functions(model, engine, len(self.corpus.labels))
        metrics = score_batches(score, self.val_batches)
        self.show_samples(start, step)
        return {"loss": metrics["loss"], "perplexity": metrics["perplexity"]}

    def show_samples(self, start, step) -> None:
        """Print a short sample of every label (temperature 0.8, fixed seed) to stderr, when this process
        shows progress."""
        if not self.progress:
            return
        from tqdm.auto import tqdm

        labels = self.corpus.labels
        rows = sample_rows(step, start(one_hot(np.arange(len(labels)), len(labels))), start_ids(self.word_vocab, ""),
                           SAMPLE_WORDS, 0.8, None, [np.random.default_rng(0) for _ in labels])
        words = np.stack(list(rows), axis=1)  # (K, steps)
        lines = [f"[{name}] {detokenize(self.word_vocab, [int(i) for i in row if i != FINISHED])}"
                 for name, row in zip(labels, words)]
        tqdm.write("--- samples (epoch end) ---\n" + "\n".join(lines) + "\n---", file=sys.stderr)

    def describe(self, engine: str, parts: EngineParts) -> str:
        c, s = self.corpus, self.settings
        per_label = ", ".join(f"{name} {n:,}" for name, n in s["train_texts"].items())
        return (f"training on {len(c.train_docs):,} texts ({per_label}; {s['train_tokens']:,} tokens, at most "
                f"{self.cond_settings.max_len} each), validating on {len(c.val_docs):,}; vocabulary "
                f"{len(self.word_vocab):,} words; model: {self.model_config.describe()}; {engine} engine, "
                f"{parts.settings['precision']}; first loss should be about ln V = {math.log(len(self.word_vocab)):.2f}")

    def torch_parts(self, config: TrainConfig, device) -> EngineParts:
        """The torch model and its step: label -> initial state, forward (bf16 autocast when asked), masked -log p."""
        import torch

        from rnnkit.torch_engine import build_model, export_tensors

        model = build_model(self.model_config).to(device)
        precision = resolve_precision(self.cond_settings.precision, device.type)
        labels = len(self.corpus.labels)

        def step(model, batch):
            # 1. the labels as one-hot vectors, the texts as inputs and targets
            features = torch.from_numpy(one_hot(batch.labels, labels)).to(device)
            x, y = (torch.from_numpy(a).to(device) for a in (batch.inputs, batch.targets))
            mask = torch.from_numpy(batch.mask).to(device)
            # 2. from each label's state through the text (the label beside every word when every_step): log p (N, T)
            with autocast(torch, device.type, precision):
                log_p, _ = model(features, x, targets=y)
            # 3. the mean over real words (the Trainer runs backward and the update)
            tokens = mask.sum()
            return -(log_p.float() * mask).sum() / tokens, int(tokens), {}

        def validate(model) -> dict:
            return self.validate(model, "torch")

        return EngineParts(model, step, validate, export_tensors, {"precision": precision, "engine": "torch"})

    def numpy_parts(self, config: TrainConfig) -> EngineParts:
        """The numpy model and its step: the masked loss and hand-written BPTT down to the bridge."""
        from rnnkit.numpy_engine import build_model

        if self.cond_settings.precision == "bf16":
            raise ConfigError("--precision bf16 is for the torch engine; the numpy engine trains in float32")
        model = build_model(self.model_config, rng=np.random.default_rng(config.seed))
        labels = len(self.corpus.labels)

        def step(model, batch, rng):
            # 1. forward from each label's state, dropout drawn from rng; only the real words count
            loss, _, _ = model.loss(one_hot(batch.labels, labels), batch.inputs, batch.targets, batch.mask,
                                    train=True, rng=rng)
            # 2. the loss's gradient, back through time and through tanh(bridge) to the label's weights
            return loss, int(batch.mask.sum()), {}, model.loss_backward()

        def tensors(model) -> dict:
            return {name: np.array(value, dtype=np.float32) for name, value in model.params.items()}

        def validate(model) -> dict:
            return self.validate(model, "numpy")

        return EngineParts(model, step, validate, tensors, {"precision": "fp32", "engine": "numpy"})


def train(data: LabelledTexts, model_config: ModelConfig, train_config: TrainConfig, settings: CondLMSettings,
          out_dir: str | Path, progress: bool = True, resume: bool = False, engine: str = "torch",
          deterministic: bool = False, overwrite: bool = False) -> dict:
    """Train a conditional LM on labelled texts (`rnnkit.data.labelled.read_labelled`, or IMDB's
    `tasks.classify.imdb.imdb_split`) with `engine` ("torch" or "numpy"); the best model is saved to `out_dir`.
    Returns the best validation metrics (loss in nats per token, perplexity)."""
    if engine == "torch":
        from rnnkit.optional import import_torch

        import_torch()  # a missing torch is named before the texts are prepared
    training = CondLMTraining(data, model_config, settings, train_config.batch_size,
                              train_config.validation_fraction, train_config.seed)
    return fit(training, train_config, out_dir, engine=engine, resume=resume, overwrite=overwrite,
               progress=progress, deterministic=deterministic)

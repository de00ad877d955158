"""Training a word LM (many-to-many): the task's parts for `rnnkit.training.fit`.

Key: N batch (parallel streams), T time steps, H hidden size, V vocabulary.

Pipeline: documents -> word ids (the classifier's tokenizer and `Vocab`, with
<eos> after each document) -> each epoch the training documents shuffled and
joined into N streams cut into T-step chunks (truncated BPTT: the hidden state
is carried from one chunk to the next, reset at each epoch's start) ->
embedding -> stacked rnn | lstm | gru -> output layer at every step (a full
softmax tied to the embedding, or an adaptive softmax) -> -log p(next word).
Validation scores the held-out documents as a few long streams with the state
carried: nats per token and perplexity.

The embedding and recurrent tensors are named as a many_to_one classifier's
(`embedding.weight`, `rnn.weight_ih_l0`, ...), so a classifier can start from them.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.documents import Documents
from rnnkit.errors import ConfigError
from rnnkit.tasks.lm import CarriedState, autocast, detached, numpy_step, resolve_precision, sample_ids, to_device, \
    torch_step
from rnnkit.tasks.wordlm.data import check_layout, epoch_stream_chunks, prepare
from rnnkit.tasks.wordlm.engines import numpy_scorer, torch_scorer
from rnnkit.tasks.wordlm.sampling import NEVER_DRAWN, detokenize, start_ids
from rnnkit.tasks.wordlm.scoring import score_ids
from rnnkit.tasks.wordlm.settings import WordLMSettings, word_lm_config
from rnnkit.training.fit import EngineParts, TaskTraining, fingerprint, fit

SAMPLE_WORDS = 40  # length of the samples shown while training


class WordLMTraining(TaskTraining):
    """Documents -> a word LM. A seeded share of the documents validates (`validation_fraction`, `seed`); the
    vocabulary is the most frequent words of the others; `model_config`'s sizes and output layer are set from it."""

    task = "wordlm"
    resumable_settings = ("sample_every", "text")  # how often samples are shown, where the text was read from

    def __init__(self, documents: Documents, model_config: ModelConfig, settings: WordLMSettings, batch_size: int,
                 validation_fraction: float, seed: int) -> None:
        corpus = prepare(documents, settings.vocab_size, validation_fraction, seed)
        check_layout(corpus, batch_size, settings.seq_len)
        self.corpus, self.word_vocab, self.vocab = corpus, corpus.vocab, corpus.vocab.to_json()
        self.model_config = word_lm_config(model_config, len(corpus.vocab), settings)
        self.lm_settings, self.batch_size = settings, batch_size
        self.settings = {**asdict(settings), "read": documents.summary(), "sources": dict(documents.read),
                         "documents_read": len(documents.docs), "tokens_read": documents.tokens,
                         "held_out": corpus.held_out, "val_documents": corpus.val_docs,
                         "train_tokens": corpus.train_tokens, "val_tokens": int(len(corpus.val_ids))}
        self.carry = CarriedState()

    def fingerprint(self) -> str:
        return fingerprint(self.corpus.train_docs, self.corpus.val_ids, list(self.word_vocab.tokens))

    def batches(self, epoch: int, rng: np.random.Generator):
        return epoch_stream_chunks(self.corpus, self.batch_size, self.lm_settings.seq_len, rng)

    def validate(self, score, step) -> dict:
        metrics = score_ids(score, self.corpus.val_ids)
        self.show_sample(step, "epoch end")
        return {"loss": metrics["loss"], "perplexity": metrics["perplexity"]}

    def show_sample(self, step, when: str) -> None:
        """Print a short sample (temperature 0.8, fixed seed) to stderr, when this process shows progress."""
        if not self.progress:
            return
        from tqdm.auto import tqdm

        ids = sample_ids(step, start_ids(self.word_vocab, ""), SAMPLE_WORDS, 0.8, None, np.random.default_rng(0),
                         NEVER_DRAWN)
        tqdm.write(f"--- sample ({when}) ---\n{detokenize(self.word_vocab, ids)}\n---", file=sys.stderr)

    def sample_now(self, steps: int) -> bool:
        every = self.lm_settings.sample_every
        return bool(every) and steps % every == 0

    def describe(self, engine: str, parts: EngineParts) -> str:
        corpus, T = self.corpus, self.lm_settings.seq_len
        chunks = (corpus.train_tokens - 1) // self.batch_size // T
        held = (f"{corpus.val_docs:,} held-out documents" if corpus.held_out == "documents"
                else "the end of the text (too few documents to hold some out)")
        return (f"training on {corpus.train_tokens:,} tokens ({self.batch_size} streams x {T} steps, ~{chunks:,} "
                f"chunks per epoch), validating on {len(corpus.val_ids):,} tokens of {held}; vocabulary "
                f"{len(self.word_vocab):,} words; model: {self.model_config.describe()}; {engine} engine, "
                f"{parts.settings['precision']}; first loss should be about ln V = {math.log(len(self.word_vocab)):.2f}")

    def torch_parts(self, config: TrainConfig, device) -> EngineParts:
        """The torch model and its step: forward from the carried state (bf16 autocast when asked), -log p."""
        import torch

        from rnnkit.torch_engine import build_model, export_tensors

        model = build_model(self.model_config).to(device)
        precision = resolve_precision(self.lm_settings.precision, device.type)
        carried, steps = self.carry, [0]

        def step(model, chunk):
            # 1. start from the state the previous chunk of these streams ended in (zeros at an epoch's start)
            state = None if chunk.first else to_device(carried.value, torch, device)
            x = torch.from_numpy(np.ascontiguousarray(chunk.inputs, dtype=np.int64)).to(device)
            y = torch.from_numpy(np.ascontiguousarray(chunk.targets, dtype=np.int64)).to(device)
            with autocast(torch, device.type, precision):
                log_p, final = model(x, state, targets=y)  # log p(next word) (N, T): only what the loss needs
            # 2. truncated BPTT: keep the values of the final state, not its graph
            carried.value = detached(final)
            # 3. the loss (the Trainer runs backward and the update)
            steps[0] += 1
            if self.sample_now(steps[0]):
                self._sample_in_training(getattr(model, "module", model), f"step {steps[0]}")  # not the DDP wrapper
            return -log_p.float().mean(), y.numel(), {}

        def validate(model) -> dict:
            return self.validate(torch_scorer(model), torch_step(model))

        return EngineParts(model, step, validate, export_tensors, {"precision": precision, "engine": "torch"})

    def numpy_parts(self, config: TrainConfig) -> EngineParts:
        """The numpy model and its step: forward from the carried state, -log p, hand-written BPTT."""
        from rnnkit.numpy_engine import build_model

        if self.lm_settings.precision == "bf16":
            raise ConfigError("--precision bf16 is for the torch engine; the numpy engine trains in float32")
        model = build_model(self.model_config, rng=np.random.default_rng(config.seed))
        carried, steps = self.carry, [0]

        def step(model, chunk, rng):
            # 1. forward from the carried state (zeros at an epoch's start); dropout drawn from rng
            state = None if chunk.first else carried.value
            loss, _, final = model.loss(chunk.inputs, chunk.targets, state, train=True, rng=rng)
            # 2. truncated BPTT: the final state's values go on, no gradient flows into the next chunk
            carried.value = final
            # 3. the loss's gradient, backward through time within the chunk
            grads = model.loss_backward()
            steps[0] += 1
            if self.sample_now(steps[0]):
                grads = {name: g.copy() for name, g in grads.items()}  # the sample's forward reuses the buffers
                self.show_sample(numpy_step(model), f"step {steps[0]}")
            return loss, chunk.targets.size, {}, grads

        def tensors(model) -> dict:
            return {name: np.array(value, dtype=np.float32) for name, value in model.params.items()}

        def validate(model) -> dict:
            return self.validate(numpy_scorer(model), numpy_step(model))

        return EngineParts(model, step, validate, tensors, {"precision": "fp32", "engine": "numpy"})

    def _sample_in_training(self, model, when: str) -> None:
        """Sample in eval mode (no dropout, no grad) in the middle of a training step, then back to train mode."""
        model.eval()
        try:
            self.show_sample(torch_step(model), when)
        finally:
            model.train()


def train(documents: Documents, model_config: ModelConfig, train_config: TrainConfig, settings: WordLMSettings,
          out_dir: str | Path, progress: bool = True, resume: bool = False, engine: str = "torch",
          deterministic: bool = False, overwrite: bool = False) -> dict:
    """Train a word LM on `documents` (`rnnkit.data.documents.read_documents`) with `engine` ("torch" or
    "numpy"); the best model is saved to `out_dir`. Returns the best validation metrics (loss in nats per
    token, perplexity)."""
    if engine == "torch":
        from rnnkit.optional import import_torch

        import_torch()  # a missing torch is named before the documents are prepared
    training = WordLMTraining(documents, model_config, settings, train_config.batch_size,
                              train_config.validation_fraction, train_config.seed)
    return fit(training, train_config, out_dir, engine=engine, resume=resume, overwrite=overwrite,
               progress=progress, deterministic=deterministic)

"""Training a character LM (many-to-many): the task's parts for `rnnkit.training.fit`.

Key: N batch (parallel streams), T time steps, V vocabulary (characters + <unk>).

Pipeline: text -> `CharVocab` ids -> N contiguous streams cut into T-step
chunks (truncated BPTT; the hidden state is carried from one chunk to the
next and reset at each epoch's start) -> embedding -> stacked rnn | lstm | gru
-> dense head at every step -> logits (N, T, V) -> cross-entropy with the next
character. Validation reads the last `validation_fraction` of the text (never
shuffled) as a few long streams with the state carried, so almost every
character is predicted with a warm state.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.errors import ConfigError
from rnnkit.tasks.charlm.data import epoch_chunks, prepare_text
from rnnkit.tasks.charlm.engines import StepFn, numpy_step, torch_step
from rnnkit.tasks.charlm.sampling import sample_ids, start_ids
from rnnkit.tasks.charlm.scoring import score_ids
from rnnkit.tasks.charlm.settings import CharLMSettings, autocast, lm_config, resolve_precision
from rnnkit.tasks.lm import CarriedState, detached, to_device
from rnnkit.training.fit import EngineParts, TaskTraining, fingerprint, fit

SAMPLE_CHARS = 200  # length of the samples shown while training


class CharLMTraining(TaskTraining):
    """A text -> a character LM. The vocabulary comes from the first (1 - validation_fraction) of the
    text, the rest validates; `model_config`'s vocabulary and output sizes are set from it."""

    task = "charlm"
    resumable_settings = ("sample_every", "text")  # how often samples are shown, where the text was read from

    def __init__(self, text: str, model_config: ModelConfig, settings: CharLMSettings, batch_size: int,
                 validation_fraction: float) -> None:
        vocab, self.train_ids, self.val_ids = prepare_text(text, validation_fraction, settings, batch_size)
        self.char_vocab, self.vocab = vocab, vocab.to_json()
        self.model_config = lm_config(model_config, len(vocab))
        self.lm_settings, self.batch_size = settings, batch_size
        self.settings = {**asdict(settings), "train_chars": int(len(self.train_ids)),
                         "val_chars": int(len(self.val_ids))}
        self.carry = CarriedState()

    def fingerprint(self) -> str:
        return fingerprint(self.train_ids, self.val_ids)

    def batches(self, epoch: int, rng: np.random.Generator):
        return epoch_chunks(self.train_ids, self.batch_size, self.lm_settings.seq_len, rng)

    def validate(self, step: StepFn) -> dict:
        metrics = score_ids(step, self.val_ids)
        self.show_sample(step, "epoch end")
        return {k: metrics[k] for k in ("loss", "bpc", "accuracy")}

    def show_sample(self, step: StepFn, when: str) -> None:
        """Print a short sample (temperature 0.8, fixed seed) to stderr, when this process shows progress."""
        if not self.progress:
            return
        from tqdm.auto import tqdm

        ids = sample_ids(step, start_ids(self.char_vocab, ""), SAMPLE_CHARS, 0.8, None, np.random.default_rng(0))
        tqdm.write(f"--- sample ({when}) ---\n{self.char_vocab.decode(ids)}\n---", file=sys.stderr)

    def sample_now(self, steps: int) -> bool:
        every = self.lm_settings.sample_every
        return bool(every) and steps % every == 0

    def describe(self, engine: str, parts: EngineParts) -> str:
        chunks = (len(self.train_ids) - 1) // self.batch_size // self.lm_settings.seq_len
        return (f"training on {len(self.train_ids):,} characters ({self.batch_size} streams x "
                f"{self.lm_settings.seq_len} steps, ~{chunks} chunks per epoch), validating on {len(self.val_ids):,}; "
                f"{len(self.char_vocab) - 1} distinct characters; model: {self.model_config.describe()}; "
                f"{engine} engine, {parts.settings['precision']}; first loss should be about "
                f"ln V = {math.log(len(self.char_vocab)):.2f}")

    def torch_parts(self, config: TrainConfig, device) -> EngineParts:
        """The torch model and its step: forward (bf16 autocast when asked), carried state, cross-entropy."""
        import torch
        import torch.nn.functional as F

        from rnnkit.torch_engine import build_model, export_tensors

        model = build_model(self.model_config).to(device)
        precision = resolve_precision(self.lm_settings.precision, device.type)
        carried, steps = self.carry, [0]

        def step(model, chunk):
            # 1. start from the state the previous chunk of these streams ended in (zeros at an epoch's start)
            state = None if chunk.first else to_device(carried.value, torch, device)
            x, y = torch.from_numpy(chunk.inputs).to(device), torch.from_numpy(chunk.targets).to(device)
            with autocast(torch, device.type, precision):
                logits, final = model(x, state)
            logits = logits.float()
            # 2. truncated BPTT: keep the values of the final state, not its graph
            carried.value = detached(final)
            # 3. the loss: every step predicts the next character (the Trainer runs backward and the update)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            correct = (logits.argmax(-1) == y).sum().item()
            steps[0] += 1
            if self.sample_now(steps[0]):
                self._sample_in_training(getattr(model, "module", model), f"step {steps[0]}")  # not the DDP wrapper
            return loss, y.numel(), {"accuracy": correct}

        return EngineParts(model, step, lambda model: self.validate(torch_step(model)), export_tensors,
                           {"precision": precision, "engine": "torch"})

    def numpy_parts(self, config: TrainConfig) -> EngineParts:
        """The numpy model and its step: forward, carried state, cross-entropy, hand-written BPTT."""
        from rnnkit.numpy_engine import build_model
        from rnnkit.numpy_engine.losses import cross_entropy_with_logits

        if self.lm_settings.precision == "bf16":
            raise ConfigError("--precision bf16 is for the torch engine; the numpy engine trains in float32")
        model = build_model(self.model_config, rng=np.random.default_rng(config.seed))
        carried, steps = self.carry, [0]

        def step(model, chunk, rng):
            # 1. forward from the carried state (zeros at an epoch's start); dropout drawn from rng
            state = None if chunk.first else carried.value
            logits, final = model.forward(chunk.inputs, state, train=True, rng=rng)  # (N, T, V)
            # 2. truncated BPTT: the final state's values go on, no gradient flows into the next chunk
            carried.value = final
            # 3. loss and its gradient, then backward through time within the chunk
            loss, dlogits = cross_entropy_with_logits(logits, chunk.targets)
            grads = model.backward(dlogits)
            correct = int((logits.argmax(-1) == chunk.targets).sum())
            steps[0] += 1
            if self.sample_now(steps[0]):
                grads = {name: g.copy() for name, g in grads.items()}  # the sample's forward reuses the buffers
                self.show_sample(numpy_step(model), f"step {steps[0]}")
            return loss, chunk.targets.size, {"accuracy": correct}, grads

        def tensors(model) -> dict:
            return {name: np.array(value, dtype=np.float32) for name, value in model.params.items()}

        return EngineParts(model, step, lambda model: self.validate(numpy_step(model)), tensors,
                           {"precision": "fp32", "engine": "numpy"})

    def _sample_in_training(self, model, when: str) -> None:
        """Sample in eval mode (no dropout, no grad) in the middle of a training step, then back to train mode."""
        model.eval()
        try:
            self.show_sample(torch_step(model), when)
        finally:
            model.train()


def train(text: str, model_config: ModelConfig, train_config: TrainConfig, settings: CharLMSettings,
          out_dir: str | Path, progress: bool = True, resume: bool = False, engine: str = "torch",
          deterministic: bool = False, overwrite: bool = False) -> dict:
    """Train a character LM on `text` with `engine` ("torch" or "numpy"); the best model is saved to `out_dir`.

    Returns the best validation metrics (loss in nats/char, bpc, accuracy).
    """
    if engine == "torch":
        from rnnkit.optional import import_torch

        import_torch()  # a missing torch is named before the text is read
    training = CharLMTraining(text, model_config, settings, train_config.batch_size,
                              train_config.validation_fraction)
    return fit(training, train_config, out_dir, engine=engine, resume=resume, overwrite=overwrite,
               progress=progress, deterministic=deterministic)

"""Training an encoder-decoder (seq2seq): the task's parts for `rnnkit.training.fit`.

Pipeline: source text -> `PairVocab` ids -> encoder -> decoder (optionally
with attention), trained with teacher forcing (`Seq2SeqSettings.teacher_forcing`
of the steps read the true previous token); validation loss picks the best
epoch, and greedy exact match is reported beside it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.pairs import PAD_ID, EncodedPairs, PairVocab
from rnnkit.errors import ConfigError
from rnnkit.tasks.seq2seq.data import PairBatch, make_batches
from rnnkit.tasks.seq2seq.engines import TorchBackend
from rnnkit.tasks.seq2seq.numpy_backend import NumpyBackend
from rnnkit.tasks.seq2seq.scoring import validation_metrics
from rnnkit.tasks.seq2seq.settings import Seq2SeqSettings
from rnnkit.training.fit import EngineParts, TaskTraining, fingerprint, fit


class Seq2SeqTraining(TaskTraining):
    """Encoded (source, target) pairs -> an encoder-decoder model."""

    task = "seq2seq"

    def __init__(self, train_data: EncodedPairs, val_data: EncodedPairs, source: PairVocab, target: PairVocab,
                 model_config: ModelConfig, settings: Seq2SeqSettings, batch_size: int,
                 extra_settings: dict | None = None) -> None:
        _check_training_inputs(train_data, val_data, source, target, model_config)
        self.train_data, self.val_data = train_data, val_data
        self.model_config, self.pair_settings, self.batch_size = model_config, settings, batch_size
        self.vocab = {"source": source.to_json(), "target": target.to_json()}
        self.settings = {**asdict(settings), **(extra_settings or {})}
        self.max_len = settings.max_target_len + 1

    def fingerprint(self) -> str:
        return fingerprint(self.train_data.sources, self.train_data.targets, self.val_data.sources,
                           self.val_data.targets)

    def batches(self, epoch: int, rng: np.random.Generator) -> list[PairBatch]:
        return make_batches(self.train_data, self.batch_size, rng)

    def describe(self, engine: str, parts: EngineParts) -> str:
        return (f"training on {len(self.train_data)} pairs, validating on {len(self.val_data)} ({engine} engine); "
                f"model: {self.model_config.describe()}")

    def torch_parts(self, config: TrainConfig, device) -> EngineParts:
        import torch
        import torch.nn.functional as F

        from rnnkit.torch_engine import build_model, export_tensors

        model = build_model(self.model_config).to(device)
        generator = torch.Generator(device=device).manual_seed(config.seed)  # teacher forcing's coin flips
        teacher_forcing = self.pair_settings.teacher_forcing

        def tensors(batch: PairBatch):
            return (torch.from_numpy(a).to(device) for a in (batch.src, batch.tgt_in, batch.tgt_out))

        def step(model, batch: PairBatch):
            src, tgt_in, tgt_out = tensors(batch)
            logits = model(src, torch.from_numpy(batch.src_lengths), tgt_in, teacher_forcing, generator)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD_ID)
            real = tgt_out != PAD_ID
            correct = ((logits.argmax(-1) == tgt_out) & real).sum().item()
            return loss, int(real.sum().item()), {"accuracy": correct}

        def validate(model) -> dict:
            def teacher_forced(batch: PairBatch):
                src, tgt_in, tgt_out = tensors(batch)
                logits = model(src, torch.from_numpy(batch.src_lengths), tgt_in)
                real = tgt_out != PAD_ID
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                                       ignore_index=PAD_ID, reduction="sum").item()
                return loss, int(real.sum()), int(((logits.argmax(-1) == tgt_out) & real).sum())

            return validation_metrics(teacher_forced, TorchBackend(model, device), self.val_data, self.max_len)

        return EngineParts(model, step, validate, export_tensors)

    def numpy_parts(self, config: TrainConfig) -> EngineParts:
        """Hand-written BPTT; any cell, depth, attention, teacher forcing."""
        from rnnkit.numpy_engine import build_model
        from rnnkit.numpy_engine.losses import cross_entropy_with_logits

        teacher_forcing = self.pair_settings.teacher_forcing

        def step(model, batch: PairBatch, rng: np.random.Generator):
            logits = model.forward(batch.src, batch.src_lengths, batch.tgt_in, train=True, rng=rng,
                                   teacher_forcing=teacher_forcing)
            loss, dlogits = cross_entropy_with_logits(logits, batch.tgt_out, ignore_index=PAD_ID)
            real = batch.tgt_out != PAD_ID
            correct = int(((logits.argmax(-1) == batch.tgt_out) & real).sum())
            return loss, int(real.sum()), {"accuracy": correct}, model.backward(dlogits)

        def validate(model) -> dict:
            backend = NumpyBackend(self.model_config, model.params)

            def teacher_forced(batch: PairBatch):
                logits = backend.model.forward(batch.src, batch.src_lengths, batch.tgt_in)
                loss, _ = cross_entropy_with_logits(logits, batch.tgt_out, ignore_index=PAD_ID)
                real = batch.tgt_out != PAD_ID
                return loss * int(real.sum()), int(real.sum()), int(((logits.argmax(-1) == batch.tgt_out) & real).sum())

            return validation_metrics(teacher_forced, backend, self.val_data, self.max_len)

        model = build_model(self.model_config, rng=np.random.default_rng(config.seed))
        return EngineParts(model, step, validate, lambda model: model.params)


def train(train_data: EncodedPairs, val_data: EncodedPairs, source: PairVocab, target: PairVocab,
          model_config: ModelConfig, train_config: TrainConfig, settings: Seq2SeqSettings, out_dir: str | Path,
          progress: bool = True, extra_settings: dict | None = None, engine: str = "torch", resume: bool = False,
          deterministic: bool = False, overwrite: bool = False) -> dict:
    """Train an encoder-decoder with `engine`; the best model (validation loss) is saved to `out_dir`.

    Returns the best validation metrics: loss (per target token), accuracy
    (per target token, teacher-forced) and exact_match (greedy decoding).
    """
    training = Seq2SeqTraining(train_data, val_data, source, target, model_config, settings,
                               train_config.batch_size, extra_settings)
    return fit(training, train_config, out_dir, engine=engine, resume=resume, overwrite=overwrite,
               progress=progress, deterministic=deterministic)


def _check_training_inputs(train_data, val_data, source, target, config: ModelConfig) -> None:
    if config.architecture != "encoder_decoder":
        raise ConfigError("a seq2seq model needs architecture encoder_decoder")
    if len(train_data) < 2 or len(val_data) < 1:
        raise ConfigError(f"need at least 2 training pairs and 1 validation pair; got {len(train_data)} and "
                          f"{len(val_data)} (check the length filters --max-source-len / --max-target-len)")
    if config.vocab_size != len(source) or config.target_vocab_size != len(target):
        raise ConfigError(f"model vocabularies ({config.vocab_size}, {config.target_vocab_size}) differ from the "
                          f"data's ({len(source)}, {len(target)})")

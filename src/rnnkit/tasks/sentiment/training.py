"""Training a sentiment model (many-to-one): the task's parts for `rnnkit.training.fit`.

Pipeline: text -> `tokenize` -> `Vocab` ids -> truncate to `maxlen` -> batch ->
embedding -> stacked recurrent layers -> pooling -> dense -> sigmoid.
A stratified validation split carved from the training reviews picks the best
epoch and drives early stopping; the test split is never read here.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.batching import Batch
from rnnkit.data.vocab import Vocab
from rnnkit.errors import ConfigError
from rnnkit.tasks.sentiment.data import make_batches, stratified_split
from rnnkit.tasks.sentiment.scoring import binary_metrics, probabilities
from rnnkit.tasks.sentiment.settings import SentimentSettings
from rnnkit.training.fit import EngineParts, TaskTraining, fingerprint, fit


class SentimentTraining(TaskTraining):
    """Encoded reviews with 0/1 labels -> a many-to-one model with one sigmoid output.

    `packed` (torch) runs the recurrent layers on packed sequences instead of masked padded
    batches (same results; slower on CPU, see bench/packing.py).
    """

    task = "sentiment"

    def __init__(self, sequences: Sequence[np.ndarray], labels: np.ndarray, vocab: Vocab, model_config: ModelConfig,
                 settings: SentimentSettings, batch_size: int, validation_fraction: float,
                 extra_settings: dict | None = None, packed: bool = False) -> None:
        _check_training_inputs(sequences, labels, vocab, model_config)
        self.sequences, self.labels = sequences, labels
        self.model_config, self.vocab = model_config, vocab.to_json()
        self.text_settings, self.batch_size, self.packed = settings, batch_size, packed
        self.validation_fraction = validation_fraction
        self.settings = {**asdict(settings), **(extra_settings or {})}

    def setup(self, rng: np.random.Generator) -> None:
        train_idx, val_idx = stratified_split(self.labels, self.validation_fraction, rng)
        self.train_seqs, self.train_labels = [self.sequences[i] for i in train_idx], self.labels[train_idx]
        self.val_seqs, self.val_labels = [self.sequences[i] for i in val_idx], self.labels[val_idx]

    def batches(self, epoch: int, rng: np.random.Generator) -> list[Batch]:
        return make_batches(self.train_seqs, self.train_labels, self.text_settings, self.batch_size, rng)

    def validate(self, logits) -> dict:
        """Metrics on the validation split, given a logits(ids, lengths) -> (N, 1) function."""
        return binary_metrics(probabilities(logits, self.val_seqs, self.text_settings), self.val_labels)

    def fingerprint(self) -> str:
        return fingerprint(self.sequences, self.labels)

    def describe(self, engine: str, parts: EngineParts) -> str:
        return (f"training on {len(self.train_seqs)} reviews, validating on {len(self.val_seqs)} ({engine} engine); "
                f"model: {self.model_config.describe()} -> sigmoid")

    def torch_parts(self, config: TrainConfig, device) -> EngineParts:
        import torch
        import torch.nn.functional as F

        from rnnkit.torch_engine import build_model, export_tensors

        packed = self.packed

        def step(model, batch: Batch):
            ids, lengths = torch.from_numpy(batch.ids).to(device), torch.from_numpy(batch.lengths).to(device)
            y = torch.from_numpy(batch.labels).to(device)
            logits = model(ids, lengths, packed=packed).squeeze(-1)
            loss = F.binary_cross_entropy_with_logits(logits, y)
            return loss, len(y), {"accuracy": ((logits > 0).float() == y).sum().item()}

        def validate(model) -> dict:
            return self.validate(lambda ids, lengths: model(torch.from_numpy(ids).to(device),
                                                            torch.from_numpy(lengths).to(device)).cpu().numpy())

        return EngineParts(build_model(self.model_config).to(device), step, validate, export_tensors)

    def numpy_parts(self, config: TrainConfig) -> EngineParts:
        from rnnkit.numpy_engine import build_model
        from rnnkit.numpy_engine.losses import binary_cross_entropy_with_logits

        def step(model, batch: Batch, rng: np.random.Generator):
            logits = model.forward(batch.ids, batch.lengths, train=True, rng=rng)  # (N, 1)
            loss, dlogits = binary_cross_entropy_with_logits(logits, batch.labels[:, None])
            correct = int(np.sum((logits[:, 0] > 0) == (batch.labels > 0.5)))
            return loss, len(batch.labels), {"accuracy": correct}, model.backward(dlogits)

        def validate(model) -> dict:
            return self.validate(lambda ids, lengths: model.forward(ids, lengths))

        model = build_model(self.model_config, rng=np.random.default_rng(config.seed))
        return EngineParts(model, step, validate, lambda model: {k: v.copy() for k, v in model.params.items()})


def train(sequences: Sequence[np.ndarray], labels: np.ndarray, vocab: Vocab, model_config: ModelConfig,
          train_config: TrainConfig, settings: SentimentSettings, out_dir: str | Path,
          progress: bool = True, extra_settings: dict | None = None, packed: bool = False,
          resume: bool = False, engine: str = "torch", deterministic: bool = False,
          overwrite: bool = False) -> dict:
    """Train a many-to-one model on encoded reviews; the best model is saved to `out_dir`.

    `engine` "torch" (fast) or "numpy" (from scratch, no torch needed) trains the same model
    into the same bundle format; `resume` continues an interrupted run (see `rnnkit.training.fit`).
    Returns the best validation metrics.
    """
    training = SentimentTraining(sequences, labels, vocab, model_config, settings, train_config.batch_size,
                                 train_config.validation_fraction, extra_settings, packed)
    return fit(training, train_config, out_dir, engine=engine, resume=resume, overwrite=overwrite,
               progress=progress, deterministic=deterministic)


def _check_training_inputs(sequences, labels, vocab: Vocab, config: ModelConfig) -> None:
    if len(sequences) != len(labels):
        raise ConfigError(f"{len(sequences)} reviews but {len(labels)} labels")
    if len(sequences) < 4 or len(np.unique(labels)) < 2:
        raise ConfigError("training needs at least 4 reviews with both labels present")
    if config.vocab_size != len(vocab):
        raise ConfigError(f"model vocab_size {config.vocab_size} != vocabulary size {len(vocab)}")
    if config.output_size != 1:
        raise ConfigError("a sentiment model has one output (a sigmoid logit); set output_size=1")

"""A classifier that starts from a trained encoder: `--init BUNDLE` (fine-tuning).

The embedding and the recurrent layers of a word language model (`rnnkit
pretrain`, task "wordlm") or of another classifier are copied into the new
classifier, with the vocabulary they were trained on; the head starts fresh.
This is the second stage of Dai & Le (2015) and ULMFiT (Howard & Ruder,
2018): the recurrent network learns the language from unlabeled text first,
then the labels. The encoder's shape (cell, layers, sizes, directions) comes
from the bundle, so the model flags that would contradict it are not used;
dropout, pooling and the training options are the user's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.config import ModelConfig
from rnnkit.data.vocab import Vocab
from rnnkit.errors import BundleError, InputError

ENCODER_PREFIXES = ("embedding.", "rnn.")  # tensor names shared by every word model's encoder
SOURCE_TASKS = ("wordlm", "classify", "sentiment")
ENCODER_FIELDS = ("cell", "num_layers", "hidden_size", "embedding_dim", "bidirectional")


@dataclass(frozen=True)
class PretrainedEncoder:
    """The encoder of a trained bundle.

    Attributes:
        source: the bundle directory.
        task: the bundle's task (wordlm, classify or sentiment).
        vocab: the vocabulary the encoder was trained with (the classifier adopts it).
        encoder: the bundle's ModelConfig fields that shape the encoder (cell, layers, sizes, directions).
        tensors: "embedding.*" and "rnn.*" tensors, by name.
        digest: SHA-256 of those tensors (part of the run's identity on --resume).
    """

    source: str
    task: str
    vocab: Vocab
    encoder: dict
    tensors: dict[str, np.ndarray]
    digest: str

    @classmethod
    def load(cls, path: str | Path) -> "PretrainedEncoder":
        from rnnkit.bundle import load_bundle

        bundle = load_bundle(path)  # every check a bundle gets: sizes, checksums, shapes, no pickle
        if bundle.task not in SOURCE_TASKS:
            raise InputError(f"--init {path} holds a {bundle.task} model; a classifier starts from a word "
                             f"language model (rnnkit pretrain) or another classifier ({', '.join(SOURCE_TASKS)})")
        if bundle.config.architecture == "one_to_one":
            raise InputError(f"--init {path} holds a bag of words (--model bow), which has no recurrent layers to "
                             "start from; give a word language model (rnnkit pretrain) or a recurrent classifier")
        try:
            vocab = Vocab.from_json(bundle.vocab)
        except BundleError as exc:
            raise InputError(f"--init {path}: {exc}") from None
        tensors = {k: v for k, v in bundle.tensors.items() if k.startswith(ENCODER_PREFIXES)}
        digest = hashlib.sha256()
        for name in sorted(tensors):
            digest.update(name.encode() + np.ascontiguousarray(tensors[name]).tobytes())
        encoder = {name: getattr(bundle.config, name) for name in ENCODER_FIELDS}
        return cls(str(path), bundle.task, vocab, encoder, tensors, digest.hexdigest())

    def model_config(self, base: ModelConfig) -> ModelConfig:
        """`base` (the user's flags) with the encoder's shape and the vocabulary's size."""
        return dataclasses.replace(base, vocab_size=len(self.vocab), **self.encoder)

    def copy_into(self, params: dict) -> None:
        """Copy the encoder into a fresh model's parameters (name -> array or tensor, written in place)."""
        for name, value in self.tensors.items():
            target = params[name]
            if tuple(target.shape) != value.shape:  # a bug: model_config() gives the encoder's shapes
                raise AssertionError(f"{name}: {tuple(target.shape)} != {value.shape}")
            if isinstance(target, np.ndarray):
                target[...] = value
            else:  # a torch parameter
                import torch

                with torch.no_grad():
                    target.copy_(torch.from_numpy(value).to(target))

    def summary(self) -> dict:
        """What the bundle records of where its encoder came from."""
        return {"bundle": Path(self.source).name, "task": self.task, "vocab_size": len(self.vocab),
                "encoder": self.encoder, "sha256": self.digest}

    def describe(self) -> str:
        e = self.encoder
        return (f"encoder from {self.source} ({self.task}: {e['cell']} {e['num_layers']}x{e['hidden_size']}, "
                f"{len(self.vocab):,} words)")

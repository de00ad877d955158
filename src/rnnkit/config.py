"""Model and training descriptions shared by both engines.

A `ModelConfig` describes a network once; `numpy_engine` and `torch_engine`
both build it, and a bundle stores it as JSON, so either engine can rebuild the
model from a bundle alone.

Parameter names (the keys of ``model.safetensors``) follow PyTorch, so weights
move between engines unchanged. With L = layer index and ``_reverse`` for the
backward direction of a bidirectional layer::

    embedding.weight              (V, E)
    rnn.weight_ih_l{L}[_reverse]  (G*H, D_L)    D_0 = E, D_L = H * num_directions
    rnn.weight_hh_l{L}[_reverse]  (G*H, H)
    rnn.bias_ih_l{L}[_reverse]    (G*H,)
    rnn.bias_hh_l{L}[_reverse]    (G*H,)
    head.weight                   (O, F)        F = pooled feature size
    head.bias                     (O,)

G is the number of gate blocks: 1 for rnn, 4 for lstm (order i|f|g|o),
3 for gru (order r|z|n). Encoder-decoder models prefix the encoder's tensors
with ``encoder.`` and the decoder's with ``decoder.``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from rnnkit.errors import ConfigError

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
ARCHITECTURES = ("many_to_one", "many_to_many", "one_to_many", "encoder_decoder")
POOLINGS = ("last", "max", "mean", "mean_max")
ATTENTIONS = ("none", "bahdanau", "luong")
OPTIMIZERS = ("adam", "rmsprop", "sgd")


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer; got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """What network to build.

    Attributes:
        vocab_size: V, rows of the embedding (input vocabulary, ids 0..V-1).
        cell: "rnn" (tanh), "lstm" or "gru".
        embedding_dim: E, size of each token vector.
        hidden_size: H, size of each direction's hidden state.
        num_layers: stacked recurrent layers (layer L+1 reads layer L's outputs).
        bidirectional: run a second, time-reversed direction in every layer.
        dropout: drop probability on embeddings, between layers and before the head.
        pooling: how a many-to-one model reduces (N, T, H*dirs) to one vector:
            "last" state of each sequence at its own length, "max", "mean" over
            real steps, or "mean_max" (both, concatenated).
        output_size: O, outputs of the dense head (1 = one sigmoid logit).
        architecture: many_to_one | many_to_many | one_to_many | encoder_decoder.
        padding_idx: id of the padding token (its embedding row stays zero).
        input_size: features of the single input vector of a one_to_many model.
        target_vocab_size: decoder vocabulary of an encoder_decoder model.
        attention: none | bahdanau | luong (encoder_decoder only).
    """

    vocab_size: int
    cell: str = "lstm"
    embedding_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    pooling: str = "last"
    output_size: int = 1
    architecture: str = "many_to_one"
    padding_idx: int = 0
    input_size: int | None = None
    target_vocab_size: int | None = None
    attention: str = "none"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first field that is out of range."""
        _check_choice("cell", self.cell, CELLS)
        _check_choice("architecture", self.architecture, ARCHITECTURES)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("attention", self.attention, ATTENTIONS)
        for name in ("vocab_size", "embedding_dim", "hidden_size", "num_layers", "output_size"):
            _check_positive(name, getattr(self, name))
        for name in ("input_size", "target_vocab_size"):
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name))
        if not isinstance(self.bidirectional, bool):  # a config read from JSON may say "no", which is truthy
            raise ConfigError(f"bidirectional must be true or false; got {self.bidirectional!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got {self.dropout!r}")
        vocabularies = [self.vocab_size] + ([self.target_vocab_size] if self.target_vocab_size else [])
        if type(self.padding_idx) is not int or not 0 <= self.padding_idx < min(vocabularies):
            raise ConfigError(f"padding_idx {self.padding_idx!r} is outside the vocabulary (size {min(vocabularies)})")
        if self.architecture == "encoder_decoder" and self.target_vocab_size is None:
            raise ConfigError("an encoder_decoder model needs target_vocab_size")
        if self.architecture == "one_to_many" and self.input_size is None:
            raise ConfigError("a one_to_many model needs input_size (features of its one input vector)")

    def describe(self) -> str:
        """The network in one line, e.g. "Embedding(30000, 128) -> biGRU(128) -> mean_max -> Dense(1)"."""
        direction = "bi" if self.bidirectional else ""
        layers = " -> ".join([f"{direction}{self.cell.upper()}({self.hidden_size})"] * self.num_layers)
        dropout = f", dropout {self.dropout:g}" if self.dropout else ""
        embedding = f"Embedding({self.vocab_size}, {self.embedding_dim})"
        if self.architecture == "many_to_one":
            return f"{embedding} -> {layers} -> {self.pooling} -> Dense({self.output_size}){dropout}"
        if self.architecture == "many_to_many":
            return f"{embedding} -> {layers} -> Dense({self.output_size}) at every step{dropout}"
        if self.architecture == "one_to_many":
            return f"Dense({self.input_size} -> initial state) -> {embedding} -> {layers} -> Dense({self.output_size}){dropout}"
        decoder = " -> ".join([f"{self.cell.upper()}({self.hidden_size * self.num_directions})"] * self.num_layers)
        attention = "" if self.attention == "none" else f" + {self.attention} attention"
        return (f"{embedding} -> {layers} => Embedding({self.target_vocab_size}, {self.embedding_dim}) -> "
                f"{decoder}{attention} -> Dense({self.target_vocab_size}){dropout}")

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def gates(self) -> int:
        """G: gate blocks stacked in each fused weight (1 rnn, 4 lstm, 3 gru)."""
        return GATES[self.cell]

    @property
    def feature_size(self) -> int:
        """F: size of the vector the many-to-one head reads."""
        per_step = self.hidden_size * self.num_directions
        return 2 * per_step if self.pooling == "mean_max" else per_step

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return _from_dict(cls, data, "model config")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimisation, regularisation, schedule and stopping.

    Attributes:
        epochs: maximum passes over the training split.
        batch_size: sequences per step.
        optimizer: adam | rmsprop | sgd.
        learning_rate: step size.
        momentum: sgd momentum.
        weight_decay: L2 penalty (decoupled for adam: AdamW).
        clip_norm: clip the global gradient norm to this (0 = no clipping).
        patience: early stopping: epochs without a better validation loss
            before stopping (0 = never stop early). The best weights are restored.
        validation_fraction: share of the training set held out for validation.
        seed: seeds weight init, data order and dropout.
        threads: torch intra-op threads, or numpy's BLAS threads on the numpy engine (0 = every core).
        device: "cpu", "cuda" or "cuda:N".
        lr_decay: multiply the learning rate by this after each epoch (1 = constant).
        checkpoint_every: save the resumable training state every this many steps
            (0 = only at epoch ends and when interrupted).
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    clip_norm: float = 5.0
    patience: int = 2
    validation_fraction: float = 0.1
    seed: int = 0
    threads: int = 0
    device: str = "cpu"
    lr_decay: float = 1.0
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0; got {self.learning_rate!r}")
        if self.clip_norm < 0 or self.patience < 0 or self.threads < 0 or self.checkpoint_every < 0:
            raise ConfigError("clip_norm, patience, threads and checkpoint_every must be >= 0")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be in (0, 1); got {self.validation_fraction!r}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ConfigError(f"lr_decay must be in (0, 1]; got {self.lr_decay!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return _from_dict(cls, data, "train config")


def _from_dict(cls, data: dict[str, Any], what: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object; got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{what} has unknown fields {unknown}; was it written by a newer rnnkit?")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{what} is incomplete or malformed: {exc}") from None


def dumps(obj: Any) -> str:
    """JSON text for configs and metadata (sorted keys, stable for diffs)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


__all__ = ["ModelConfig", "TrainConfig", "CELLS", "GATES", "ARCHITECTURES", "POOLINGS", "dumps"]

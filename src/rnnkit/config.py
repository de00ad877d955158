"""Model and training descriptions shared by both engines.

A `ModelConfig` describes a network once; `numpy_engine` and `torch_engine`
both build it, and a bundle stores it as JSON, so either engine can rebuild the
model from a bundle alone.

Parameter names (the keys of ``model.safetensors``) follow PyTorch, so weights
move between engines unchanged. With L = layer index and ``_reverse`` for the
backward direction of a bidirectional layer::

    embedding.weight              (V, E)
    rnn.weight_ih_l{L}[_reverse]  (G*H, D_L)    D_0 = E (or E + K: below), D_L = H * num_directions
    rnn.weight_hh_l{L}[_reverse]  (G*H, H)
    rnn.bias_ih_l{L}[_reverse]    (G*H,)
    rnn.bias_hh_l{L}[_reverse]    (G*H,)
    head.weight                   (O, F)        F = pooled feature size
    head.bias                     (O,)

A one_to_many model adds bridge.weight (L*H, K) and bridge.bias (L*H,) (K = input_size,
its one input vector v -> tanh -> every layer's initial state); conditioned at
every step (`condition="every_step"`) its first layer also reads v beside each
token's embedding, so D_0 = E + K (`ModelConfig.rnn_input_size`).

A one_to_one model (a bag of words: no recurrent layers) has instead::

    embedding.weight              (V, E)
    dense.weight                  (H, E)        the mean of the text's embeddings -> tanh(dense)
    dense.bias                    (H,)
    head.weight                   (O, H)
    head.bias                     (O,)

A many_to_many or one_to_many language model may have another output layer
(`output_layer`): "tied" reuses embedding.weight as its output matrix, so it
has no head.weight, only head.bias (V,) and, when H != E, a projection
head.projection.weight (E, H) from the hidden state to the embedding size;
"adaptive" is an adaptive softmax (Grave et al. 2017, torch's
AdaptiveLogSoftmaxWithLoss, div_value 4) over `cutoffs` [c_1 < ... < c_K]:
head.weight (c_1 + K, H) and head.bias (c_1 + K,) score the c_1 most frequent
ids and one entry per cluster; cluster k (ids c_k .. c_{k+1} - 1, c_{K+1} = V)
has head.tail.{k-1}.0.weight (H // 4^k, H) and head.tail.{k-1}.1.weight
(c_{k+1} - c_k, H // 4^k).

G is the number of gate blocks: 1 for rnn, 4 for lstm (order i|f|g|o),
3 for gru (order r|z|n). Encoder-decoder models prefix the encoder's tensors
with ``encoder.`` and the decoder's with ``decoder.``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from rnnkit.errors import ConfigError

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
ARCHITECTURES = ("many_to_one", "many_to_many", "one_to_many", "encoder_decoder", "one_to_one")
POOLINGS = ("last", "max", "mean", "mean_max")
ATTENTIONS = ("none", "bahdanau", "luong")
OUTPUT_LAYERS = ("dense", "tied", "adaptive")
CONDITIONS = ("initial", "every_step")  # how a one_to_many model's input vector enters: initial state, or every step too
ADAPTIVE_DIV = 4  # each adaptive-softmax cluster's projection is 4x narrower than the one before (torch's div_value)
OPTIMIZERS = ("adam", "rmsprop", "sgd")
LR_SCHEDULES = ("exponential", "linear", "cosine")
# Upper bounds on a model's sizes: far above any model rnnkit trains (IMDB: 30,000 words, 128 units, 1-2 layers),
# low enough that a hostile config.json cannot make the loader build millions of names or huge shapes
MAX_LAYERS = 16
MAX_WIDTH = 1 << 16        # embedding_dim, hidden_size, input_size: 65,536
MAX_VOCABULARY = 1 << 24   # vocab_size, target_vocab_size, output_size: 16,777,216
SIZE_LIMITS = {"vocab_size": MAX_VOCABULARY, "target_vocab_size": MAX_VOCABULARY, "output_size": MAX_VOCABULARY,
               "embedding_dim": MAX_WIDTH, "hidden_size": MAX_WIDTH, "input_size": MAX_WIDTH,
               "num_layers": MAX_LAYERS}


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}; got {_short(value)}")


def _check_positive(name: str, value: Any, limit: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer; got {_short(value)}")
    if limit is not None and value > limit:
        raise ConfigError(f"{name} is {_short(value)}, more than the {limit:,} rnnkit allows; "
                          "the config is damaged, or the model is far larger than any rnnkit trains")


def _check_number(name: str, flag: str | None, value: Any, low: float, high: float = math.inf,
                  low_open: bool = False, high_open: bool = False) -> None:
    """A finite real number in the range (bounds open or closed); ConfigError naming the field and its flag."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lower = f"{'>' if low_open else '>='} {low:g}"
        upper = "" if high == math.inf else f" and {'<' if high_open else '<='} {high:g}"
        named = f"{name} ({flag})" if flag else name
        raise ConfigError(f"{named} must be a finite number {lower}{upper}; got {_short(value)}")


def _short(value: Any) -> str:
    """repr(value), cut short (a crafted config may hold a huge number or string)."""
    if isinstance(value, int) and abs(value) >= 10 ** 30:  # str() of a 5,000-digit int raises
        return f"a number of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
        architecture: many_to_one | many_to_many | one_to_many | encoder_decoder | one_to_one.
            one_to_one is a bag of words, no recurrence: the mean of the embeddings of a text's
            tokens (padding left out; word order ignored) -> Dense(hidden_size), tanh -> dropout -> head.
            cell, num_layers, bidirectional and pooling are not used by it.
        padding_idx: id of the padding token (its embedding row stays zero).
        input_size: features of the single input vector of a one_to_many model.
        target_vocab_size: decoder vocabulary of an encoder_decoder model.
        attention: none | bahdanau | luong (encoder_decoder only).
        output_layer: "dense" (head.weight, head.bias), or for a many_to_many or one_to_many LM predicting its
            own vocabulary "tied" (the embedding is the output matrix) or "adaptive" (adaptive softmax).
        cutoffs: the adaptive softmax's cluster boundaries, increasing ids in (0, V) (adaptive only; a
            list read from JSON is kept as a tuple).
        condition: how a one_to_many model's input vector v (K = input_size) conditions it: "initial" (the
            default, and what every bundle written before this field meant): v sets the initial state only,
            h0 = tanh(bridge(v)); "every_step": that, and v is also concatenated to the input of the first
            recurrent layer at every step, [embedding(x_t); v], so rnn.weight_ih_l0 is (G*H, E + K).
            Other architectures take only "initial".
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
    output_layer: str = "dense"
    cutoffs: tuple[int, ...] | None = None
    condition: str = "initial"

    def __post_init__(self) -> None:
        if isinstance(self.cutoffs, list):  # JSON has no tuples: one form, so a config equals its round trip
            object.__setattr__(self, "cutoffs", tuple(self.cutoffs))
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first field that is out of range."""
        _check_choice("cell", self.cell, CELLS)
        _check_choice("architecture", self.architecture, ARCHITECTURES)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("attention", self.attention, ATTENTIONS)
        for name in ("vocab_size", "embedding_dim", "hidden_size", "num_layers", "output_size"):
            _check_positive(name, getattr(self, name), SIZE_LIMITS[name])
        for name in ("input_size", "target_vocab_size"):
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name), SIZE_LIMITS[name])
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
        _check_choice("condition", self.condition, CONDITIONS)
        if self.condition != "initial" and self.architecture != "one_to_many":
            raise ConfigError(f"condition {self.condition} is for a one_to_many model (its one input vector fed at "
                              f"every step); a {self.architecture} model takes condition initial")
        self._validate_output_layer()

    def _validate_output_layer(self) -> None:
        _check_choice("output_layer", self.output_layer, OUTPUT_LAYERS)
        if self.output_layer == "dense":
            if self.cutoffs is not None:
                raise ConfigError("cutoffs belong to output_layer adaptive; leave them out (null)")
            return
        if (self.architecture not in ("many_to_many", "one_to_many") or self.bidirectional
                or self.output_size != self.vocab_size):
            raise ConfigError(f"output_layer {self.output_layer} is for a left-to-right many_to_many or one_to_many "
                              f"language model predicting its own vocabulary (output_size = vocab_size); use "
                              f"output_layer dense")
        if self.output_layer == "tied":
            if self.cutoffs is not None:
                raise ConfigError("cutoffs belong to output_layer adaptive; leave them out (null)")
            return
        cutoffs = self.cutoffs
        if (not isinstance(cutoffs, tuple) or not 1 <= len(cutoffs) <= MAX_LAYERS
                or not all(type(c) is int for c in cutoffs)):
            raise ConfigError(f"cutoffs must be 1..{MAX_LAYERS} increasing whole numbers for output_layer adaptive; "
                              f"got {_short(cutoffs)}")
        if list(cutoffs) != sorted(set(cutoffs)) or cutoffs[0] < 1 or cutoffs[-1] >= self.vocab_size:
            raise ConfigError(f"cutoffs must increase strictly within 1..{self.vocab_size - 1} (the vocabulary has "
                              f"{self.vocab_size} ids); got {_short(cutoffs)}")
        if self.hidden_size // ADAPTIVE_DIV ** len(cutoffs) < 1:
            raise ConfigError(f"{len(cutoffs)} adaptive-softmax clusters need hidden_size >= "
                              f"{ADAPTIVE_DIV ** len(cutoffs)} (each cluster's projection is {ADAPTIVE_DIV}x narrower); "
                              f"got {self.hidden_size}: use fewer cutoffs or a larger hidden size")

    def describe(self) -> str:
        """The network in one line, e.g. "Embedding(30000, 128) -> biGRU(128) -> mean_max -> Dense(1)"."""
        direction = "bi" if self.bidirectional else ""
        layers = " -> ".join([f"{direction}{self.cell.upper()}({self.hidden_size})"] * self.num_layers)
        dropout = f", dropout {self.dropout:g}" if self.dropout else ""
        embedding = f"Embedding({self.vocab_size}, {self.embedding_dim})"
        if self.architecture == "one_to_one":
            return (f"{embedding} -> mean over the words (bag of words) -> Dense({self.hidden_size}), tanh "
                    f"-> Dense({self.output_size}){dropout}")
        if self.architecture == "many_to_one":
            return f"{embedding} -> {layers} -> {self.pooling} -> Dense({self.output_size}){dropout}"
        head = {"dense": f"Dense({self.output_size})",
                "tied": f"tied softmax({self.output_size}, the embedding)",
                "adaptive": f"adaptive softmax({self.output_size}, cutoffs {list(self.cutoffs or ())})"}
        if self.architecture == "many_to_many":
            return f"{embedding} -> {layers} -> {head[self.output_layer]} at every step{dropout}"
        if self.architecture == "one_to_many":
            every = f" + the input ({self.input_size}) at every step" if self.condition == "every_step" else ""
            return (f"Dense({self.input_size} -> initial state) -> {embedding}{every} -> {layers} -> "
                    f"{head[self.output_layer]}{dropout}")
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
    def rnn_input_size(self) -> int:
        """D_0: features per step into the first recurrent layer: E, plus K (input_size) for a one_to_many model
        conditioned at every step."""
        return self.embedding_dim + (self.input_size if self.condition == "every_step" else 0)

    @property
    def feature_size(self) -> int:
        """F: size of the vector the many-to-one head reads."""
        per_step = self.hidden_size * self.num_directions
        return 2 * per_step if self.pooling == "mean_max" else per_step

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.cutoffs is not None:
            data["cutoffs"] = list(self.cutoffs)  # as JSON gives it back
        if self.architecture != "one_to_many":  # always "initial" there: their config.json stays as it was
            del data["condition"]
        return data

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
        lr_decay: multiply the learning rate by this after each epoch (1 = constant); the
            "exponential" schedule only.
        checkpoint_every: save the resumable training state every this many steps
            (0 = only at epoch ends and when interrupted).
        lr_schedule: exponential (lr_decay per epoch) | linear | cosine (per step, from the
            learning rate down to 0 at the last step of `epochs`), after the warm-up.
        warmup: share of the run's steps (epochs x steps per epoch) over which the learning rate
            rises linearly from lr/steps to lr (0 = none).
        layer_lr_decay: discriminative learning rates (Howard & Ruder 2018): each layer below the
            head learns at the rate of the one above divided by this (2.6 in ULMFiT; 1 = one rate).
        gradual_unfreeze: train only the head in epoch 1, then one more layer each epoch, from the
            top recurrent layer down to the embedding (ULMFiT); frozen layers take no step.
        See `rnnkit.training.schedule` for the layers.
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
    lr_schedule: str = "exponential"
    warmup: float = 0.0
    layer_lr_decay: float = 1.0
    gradual_unfreeze: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first field (and its command-line flag) that is out of range.

        Every number must be finite: an infinite learning rate or a NaN clip norm would otherwise be
        accepted here and fail (or silently do nothing) steps later, differently on each engine.
        """
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        _check_number("learning_rate", "--lr", self.learning_rate, 0.0, low_open=True)
        _check_number("weight_decay", "--weight-decay", self.weight_decay, 0.0)
        _check_number("clip_norm", "--clip-norm", self.clip_norm, 0.0)
        _check_number("momentum", None, self.momentum, 0.0, 1.0, high_open=True)
        _check_number("validation_fraction", "--val-fraction", self.validation_fraction, 0.0, 1.0,
                      low_open=True, high_open=True)
        _check_number("lr_decay", "--lr-decay", self.lr_decay, 0.0, 1.0, low_open=True)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _check_number("warmup", "--warmup", self.warmup, 0.0, 1.0, high_open=True)
        _check_number("layer_lr_decay", "--layer-lr-decay", self.layer_lr_decay, 1.0, 1000.0)
        if not isinstance(self.gradual_unfreeze, bool):
            raise ConfigError(f"gradual_unfreeze (--gradual-unfreeze) must be true or false; "
                              f"got {_short(self.gradual_unfreeze)}")
        for name, flag in (("patience", "--patience"), ("threads", "--threads"),
                           ("checkpoint_every", "--checkpoint-every"), ("seed", "--seed")):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2 ** 63:
                raise ConfigError(f"{name} ({flag}) must be a whole number >= 0; got {_short(value)}")
        if not isinstance(self.device, str):
            raise ConfigError(f"device (--device) must be a name such as cpu or cuda:0; got {_short(self.device)}")

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


def finite_json(value: Any) -> Any:
    """`value` (JSON-able) with every NaN, Infinity and -Infinity replaced by None (JSON has no such numbers).

    A round trip through the C encoder and decoder, so a deeply nested value costs no Python recursion.
    """
    return json.loads(json.dumps(value, allow_nan=True), parse_constant=lambda _: None)


__all__ = ["ModelConfig", "TrainConfig", "CELLS", "GATES", "ARCHITECTURES", "POOLINGS", "CONDITIONS", "dumps",
           "finite_json"]

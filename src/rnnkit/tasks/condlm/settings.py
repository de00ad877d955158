"""Conditional-LM settings, saved in the bundle; the model as a one_to_many word LM (the label sets the initial
state and, by default, is read again at every step).

Key: V vocabulary (with <pad>, <unk> and <eos>), K labels, E embedding size, H hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.config import CONDITIONS, ModelConfig
from rnnkit.errors import ConfigError
from rnnkit.tasks.wordlm.settings import WordLMSettings, word_lm_config

# The default model and run: about 20 minutes on 2 CPU cores over IMDB's 25,000 training reviews
# (measured: 14,000 tokens/s on one thread of this machine; README: "The RNN lab", docs/lab.md).
DEFAULTS = {"cell": "lstm", "layers": 1, "hidden": 256, "embedding_dim": 128, "dropout": 0.2, "max_len": 120,
            "batch_size": 64, "lr": 3e-3, "lr_decay": 0.85, "epochs": 6, "patience": 2, "vocab_size": 15_000,
            "val_fraction": 0.05, "clip_norm": 1.0}

MAX_LABELS = 1000


@dataclass(frozen=True)
class CondLMSettings:
    """Labels, text and output-layer settings, saved in the bundle.

    Attributes:
        labels: the label names, sorted; label k is the one-hot vector e_k into the model's bridge.
        max_len: words of each text trained on, its first ones (a text that fits is followed by <eos>).
        vocab_size, softmax, tie, cutoffs, precision: as a word LM's (`WordLMSettings`).
        data: the path the labelled texts were read from (informational).
        text_field, label_field: where the texts and labels came from in that file (informational).
        condition: how the label enters the model (`ModelConfig.condition`): "every_step" (the default): it
            sets the initial state and is read again beside every word, so it cannot fade; "initial": it sets
            the initial state only (what bundles written before this setting did; their settings lack it).
    """

    labels: tuple[str, ...]
    max_len: int = 120
    vocab_size: int = 15_000
    softmax: str = "auto"
    tie: bool | None = None
    cutoffs: list[int] | None = None
    precision: str = "auto"
    data: str | None = None
    text_field: str | None = None
    label_field: str | None = None
    condition: str = "every_step"

    def __post_init__(self) -> None:
        labels = self.labels
        if (not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) and x for x in labels)
                or not 2 <= len(labels) <= MAX_LABELS or len(set(labels)) != len(labels)):
            raise ConfigError(f"labels must be 2..{MAX_LABELS} distinct non-empty names; got {labels!r}")
        object.__setattr__(self, "labels", tuple(labels))
        if self.condition not in CONDITIONS:
            raise ConfigError(f"condition must be one of {', '.join(CONDITIONS)} (--condition "
                              f"{'|'.join(c.replace('_', '-') for c in CONDITIONS)}); got {self.condition!r}")
        self.words  # the word LM's checks: vocab_size, softmax, tie, cutoffs, precision, max_len as seq_len

    @property
    def words(self) -> WordLMSettings:
        """The word-LM side of these settings (its checks, its output layer)."""
        if isinstance(self.max_len, bool) or not isinstance(self.max_len, int) or not 1 <= self.max_len <= 10_000:
            raise ConfigError(f"max_len must be a whole number in 1..10,000; got {self.max_len!r}")
        return WordLMSettings(seq_len=self.max_len, vocab_size=self.vocab_size, softmax=self.softmax, tie=self.tie,
                              cutoffs=self.cutoffs, precision=self.precision)

    @classmethod
    def from_bundle(cls, settings: dict) -> "CondLMSettings":
        """The settings a bundle saved (other keys it holds, such as counts of what was read, are left out); a
        bundle without `condition` was written before it existed, when the label set the initial state only."""
        return cls(**{"condition": "initial", **{k: v for k, v in settings.items() if k in cls.__dataclass_fields__}})


def condlm_config(config: ModelConfig, vocab_size: int, settings: CondLMSettings) -> ModelConfig:
    """`config` as a conditional LM: a word LM over `vocab_size` ids (its output layer from `settings`) whose
    initial state comes from a one-hot label, one_to_many with input_size K, and which also reads the label at
    every step when `settings.condition` is every_step."""
    lm = word_lm_config(config, vocab_size, settings.words)
    return ModelConfig(**{**lm.to_dict(), "architecture": "one_to_many", "input_size": len(settings.labels),
                          "condition": settings.condition})

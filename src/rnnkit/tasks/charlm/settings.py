"""Character-LM settings, saved in the bundle; the training precision (`rnnkit.tasks.lm`); the model as a
language model."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.config import ModelConfig
from rnnkit.data.text import UNK_ID
from rnnkit.errors import ConfigError
from rnnkit.tasks.lm import PRECISIONS, autocast, resolve_precision  # shared with the word LM; named here too

__all__ = ["DEFAULTS", "PRECISIONS", "CharLMSettings", "autocast", "lm_config", "resolve_precision"]

# The default model and recipe: sized for a 2-core CPU (bench/charlm.py, bench/results/charlm.json). On an
# AMD EPYC with 2 cores, dropout 0.3 with AdamW weight decay 0.2 and a cosine schedule reached 1.3872
# nats/char on tiny-shakespeare in 20 fp32 epochs (27.7 min); dropout 0.4 with weight decay 0.1 stopped at
# 1.4103 in 18, and dropout 0.5 learned too slowly (1.4311). The per-epoch decay (lr_decay, --lr-schedule
# exponential) reached 1.3943 in the same 20 epochs, but learns more in short runs (docs/lab-cells.md).
DEFAULTS = {"cell": "lstm", "layers": 2, "hidden": 512, "embedding_dim": 64, "dropout": 0.3, "seq_len": 128,
            "batch_size": 32, "lr": 3e-3, "lr_decay": 0.92, "lr_schedule": "cosine", "warmup": 0.02,
            "weight_decay": 0.2, "epochs": 30, "patience": 4}


@dataclass(frozen=True)
class CharLMSettings:
    """Data and sampling settings, saved in the bundle.

    Attributes:
        seq_len: T, characters per chunk of truncated BPTT.
        sample_every: print a short sample every this many training steps (0 = only at epoch ends).
        text: the training text's path (informational; `rnnkit evaluate` uses it when --text is left out).
        precision: the training forward pass in "fp32", "bf16" (torch autocast; weights, gradients and
            the optimizer stay float32) or "auto": bf16 on a CPU with AMX-BF16 (measured 2.4x faster
            per step on a Xeon, the same validation curve) or AVX512-BF16 (1.6x on an AMD EPYC), else fp32. Evaluation and
            generation always run in float32.
    """

    seq_len: int = 128
    sample_every: int = 0
    text: str | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.seq_len, int) or not 1 <= self.seq_len <= 10_000:
            raise ConfigError(f"seq_len must be an integer in 1..10000; got {self.seq_len!r}")
        if not isinstance(self.sample_every, int) or self.sample_every < 0:
            raise ConfigError(f"sample_every must be an integer >= 0; got {self.sample_every!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.text is not None and not isinstance(self.text, str):
            raise ConfigError(f"text must be the training text's path or null; got {type(self.text).__name__}")

    @classmethod
    def from_bundle(cls, settings: dict) -> "CharLMSettings":
        """The settings a bundle saved (other keys it holds, such as the text's size, are left out)."""
        return cls(**{k: v for k, v in settings.items() if k in cls.__dataclass_fields__})


def lm_config(config: ModelConfig, vocab_size: int) -> ModelConfig:
    """`config` as a character LM over `vocab_size` ids: many_to_many, predicting its own vocabulary."""
    if config.bidirectional:
        raise ConfigError("a language model reads left to right; it cannot be bidirectional")
    fields = {**config.to_dict(), "vocab_size": vocab_size, "output_size": vocab_size,
              "architecture": "many_to_many", "padding_idx": UNK_ID}
    return ModelConfig(**fields)

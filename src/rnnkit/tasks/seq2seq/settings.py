"""Seq2seq settings: how text becomes ids and back, saved in the bundle so translate does what training did."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.errors import ConfigError

DATASETS = ("pairs", "dates", "reverse")


MAX_OUTPUT_LEN = 1000


MAX_BEAM = 64


@dataclass(frozen=True)
class Seq2SeqSettings:
    """How text becomes ids and back; saved in the bundle so translate does what training did.

    Attributes:
        dataset: "pairs" (a TSV file), "dates" or "reverse" (generated).
        source_level, target_level: "word" or "char" tokens.
        lowercase: lower-case both sides before tokenizing.
        max_source_len, max_target_len: longest source / target, in tokens (longer training pairs are dropped).
        teacher_forcing: probability of feeding the true previous token while training (1 = always).
    """

    dataset: str = "pairs"
    source_level: str = "word"
    target_level: str = "word"
    lowercase: bool = True
    max_source_len: int = 50
    max_target_len: int = 50
    teacher_forcing: float = 1.0

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset must be one of {', '.join(DATASETS)}; got {self.dataset!r}")
        for name in ("source_level", "target_level"):
            if getattr(self, name) not in ("word", "char"):
                raise ConfigError(f"{name} must be word or char; got {getattr(self, name)!r}")
        for name in ("max_source_len", "max_target_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_OUTPUT_LEN - 1:
                raise ConfigError(f"{name} must be an integer in 1..{MAX_OUTPUT_LEN - 1}; got {value!r}")
        if (isinstance(self.teacher_forcing, bool) or not isinstance(self.teacher_forcing, (int, float))
                or not 0.0 <= self.teacher_forcing <= 1.0):
            raise ConfigError(f"teacher forcing ratio must be in [0, 1]; got {self.teacher_forcing!r}")

    @classmethod
    def from_bundle(cls, settings: dict) -> "Seq2SeqSettings":
        """The settings a bundle saved (other keys it holds, such as the pair file's name, are left out)."""
        return cls(**{k: v for k, v in settings.items() if k in cls.__dataclass_fields__})

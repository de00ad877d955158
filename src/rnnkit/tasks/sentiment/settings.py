"""Sentiment settings: how text becomes a batch, saved in the bundle so predict does what training did."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.errors import ConfigError

LABELS = ("negative", "positive")
MAX_MAXLEN = 100_000  # tokens: IMDB's longest review has about 2,500; "pre" padding allocates maxlen per text


@dataclass(frozen=True)
class SentimentSettings:
    """How text becomes a batch; saved in the bundle so predict does exactly what training did.

    Attributes:
        maxlen: keep at most this many tokens of a review.
        truncating: "pre" drops the start of long reviews (keeps the ending), "post" the end.
        padding: "post" (bucketed + masked) or "pre" (fixed maxlen, Keras-style, no masks).
        vocab_size: vocabulary size including <pad> and <unk> (None: every training word).
    """

    maxlen: int = 500
    truncating: str = "pre"
    padding: str = "post"
    vocab_size: int | None = 30000

    def __post_init__(self) -> None:
        if not _is_int(self.maxlen) or not 1 <= self.maxlen <= MAX_MAXLEN:
            raise ConfigError(f"maxlen must be an integer in 1..{MAX_MAXLEN:,}; got {self.maxlen!r}")
        for name in ("truncating", "padding"):
            if getattr(self, name) not in ("pre", "post"):
                raise ConfigError(f"{name} must be 'pre' or 'post'; got {getattr(self, name)!r}")
        if self.vocab_size is not None and (not _is_int(self.vocab_size) or self.vocab_size < 3):
            raise ConfigError(f"vocab_size must be at least 3 (or 0 for every word); got {self.vocab_size}")

    @classmethod
    def from_bundle(cls, settings: dict) -> "SentimentSettings":
        """The settings a bundle saved (other keys it holds, such as the data set's name, are left out)."""
        return cls(**{k: v for k, v in settings.items() if k in cls.__dataclass_fields__})


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

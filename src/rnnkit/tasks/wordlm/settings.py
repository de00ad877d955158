"""Word-LM settings, saved in the bundle; the model as a word language model (its output layer).

Key: V vocabulary (with <pad>, <unk> and <eos>), E embedding size, H hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.config import ADAPTIVE_DIV, ModelConfig
from rnnkit.data.documents import PER
from rnnkit.data.vocab import PAD_ID
from rnnkit.errors import ConfigError
from rnnkit.tasks.lm import PRECISIONS

# The default model and run, sized for 2 CPU cores (README: "Pretraining a word language model").
DEFAULTS = {"cell": "lstm", "layers": 1, "hidden": 256, "embedding_dim": 256, "dropout": 0.2, "seq_len": 70,
            "batch_size": 64, "lr": 2e-3, "lr_decay": 0.8, "epochs": 5, "patience": 2, "vocab_size": 30_000,
            "val_fraction": 0.05, "sample_every": 1000, "clip_norm": 1.0}

SOFTMAXES = ("auto", "full", "adaptive")
ADAPTIVE_ABOVE = 5_000  # "auto": an adaptive softmax for vocabularies larger than this, else a full (tied) one
RESERVED = 3  # <pad>, <unk>, <eos>


@dataclass(frozen=True)
class WordLMSettings:
    """Data, output-layer and sampling settings, saved in the bundle.

    Attributes:
        seq_len: T, tokens per chunk of truncated BPTT.
        vocab_size: most ids in the vocabulary, <pad>, <unk> and <eos> included (the most frequent words
            of the training documents; the rest read as <unk>).
        documents: how a text file splits into documents: "paragraph" (blank lines), "line" or "file".
        max_tokens: read only the first this many tokens of the text (None: all of it).
        softmax: "full" (V-way), "adaptive" (adaptive softmax) or "auto" (adaptive above ADAPTIVE_ABOVE ids).
        tie: a full softmax's output matrix is the embedding (None: yes for "full"; an adaptive one never).
        cutoffs: the adaptive softmax's cluster boundaries (None: chosen from V, `default_cutoffs`).
        sample_every: print a short sample every this many training steps (0 = only at epoch ends).
        precision: "fp32", "bf16" (torch autocast on the forward pass) or "auto" (bf16 on CPUs with AMX-BF16
            or AVX512-BF16).
        text: the paths read (informational; `rnnkit evaluate` re-reads them for the validation documents).
    """

    seq_len: int = 70
    vocab_size: int = 30_000
    documents: str = "paragraph"
    max_tokens: int | None = None
    softmax: str = "auto"
    tie: bool | None = None
    cutoffs: list[int] | None = None
    sample_every: int = 0
    precision: str = "auto"
    text: list[str] | None = None

    def __post_init__(self) -> None:
        for name, low, high in (("seq_len", 1, 10_000), ("vocab_size", RESERVED + 1, 1 << 24)):
            value = getattr(self, name)
            if not _is_int(value) or not low <= value <= high:
                raise ConfigError(f"{name} must be a whole number in {low}..{high:,}; got {value!r}")
        if self.max_tokens is not None and (not _is_int(self.max_tokens) or self.max_tokens < 2):
            raise ConfigError(f"max_tokens must be a whole number >= 2 (or left out); got {self.max_tokens!r}")
        if not _is_int(self.sample_every) or self.sample_every < 0:
            raise ConfigError(f"sample_every must be a whole number >= 0; got {self.sample_every!r}")
        for name, choices in (("documents", PER), ("softmax", SOFTMAXES), ("precision", PRECISIONS)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {getattr(self, name)!r}")
        if self.tie is not None and not isinstance(self.tie, bool):
            raise ConfigError(f"tie must be true, false or null; got {self.tie!r}")
        if self.tie and self.softmax == "adaptive":
            raise ConfigError("--tie shares the embedding with a full softmax; use --softmax full, or leave --tie "
                              "out (an adaptive softmax has its own output weights)")
        if self.cutoffs is not None and (not isinstance(self.cutoffs, list) or not all(_is_int(c) for c in self.cutoffs)):
            raise ConfigError(f"cutoffs must be a list of whole numbers; got {self.cutoffs!r}")
        if self.cutoffs is not None and self.softmax == "full":
            raise ConfigError("--cutoffs are the clusters of an adaptive softmax; use --softmax adaptive, or leave "
                              "--cutoffs out")
        if self.text is not None and (not isinstance(self.text, list) or not all(isinstance(t, str) for t in self.text)):
            raise ConfigError(f"text must be a list of paths or null; got {self.text!r}")

    @classmethod
    def from_bundle(cls, settings: dict) -> "WordLMSettings":
        """The settings a bundle saved (other keys it holds, such as what was read, are left out)."""
        return cls(**{k: v for k, v in settings.items() if k in cls.__dataclass_fields__})


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def default_cutoffs(vocab_size: int, hidden_size: int) -> list[int]:
    """Cluster boundaries for an adaptive softmax over V ids: [V // 15, V // 3] ([2000, 10000] for 30,000),
    fewer when V or H is too small (each cluster's projection is H // 4^k wide, at least 1)."""
    cutoffs: list[int] = []
    for cut in (vocab_size // 15, vocab_size // 3):
        if cut > (cutoffs[-1] if cutoffs else 0) and cut < vocab_size and hidden_size // ADAPTIVE_DIV ** (len(cutoffs) + 1):
            cutoffs.append(cut)
    if not cutoffs and vocab_size > 1 and hidden_size >= ADAPTIVE_DIV:
        cutoffs = [max(1, vocab_size // 2)]
    if not cutoffs:
        raise ConfigError(f"an adaptive softmax over {vocab_size} ids with hidden size {hidden_size} has no room for a "
                          f"cluster; use --softmax full")
    return cutoffs


def output_layer(settings: WordLMSettings, vocab_size: int) -> str:
    """The output layer the settings ask for over `vocab_size` ids: "adaptive", "tied" or "dense"."""
    softmax = settings.softmax
    if softmax == "auto":
        softmax = "adaptive" if vocab_size > ADAPTIVE_ABOVE else "full"
    if softmax == "adaptive":
        return "adaptive"
    return "dense" if settings.tie is False else "tied"


def word_lm_config(config: ModelConfig, vocab_size: int, settings: WordLMSettings) -> ModelConfig:
    """`config` as a word LM over `vocab_size` ids: many_to_many, predicting its own vocabulary, with the output
    layer of `settings` (tied full softmax: a projection from H to E when they differ)."""
    if config.bidirectional:
        raise ConfigError("a language model reads left to right; it cannot be bidirectional")
    layer = output_layer(settings, vocab_size)
    cutoffs = None
    if layer == "adaptive":
        cutoffs = settings.cutoffs or default_cutoffs(vocab_size, config.hidden_size)
    fields = {**config.to_dict(), "vocab_size": vocab_size, "output_size": vocab_size, "architecture": "many_to_many",
              "padding_idx": PAD_ID, "output_layer": layer, "cutoffs": cutoffs}
    return ModelConfig(**fields)

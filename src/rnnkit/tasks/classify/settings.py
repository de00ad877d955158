"""Text classification settings: the labels, and how text becomes a batch (saved in the bundle); and the
pretrained word vectors a training starts from."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rnnkit.errors import ConfigError

CLASS_WEIGHTS = ("none", "balanced")
DATASETS = (None, "imdb")  # imdb: `rnnkit train imdb`, the preset over aclImdb
MAX_MAXLEN = 100_000  # tokens: IMDB's longest review has about 2,500; "pre" padding allocates maxlen per text


@dataclass(frozen=True)
class ClassifySettings:
    """What a classifier predicts and how its text is read; predict and evaluate do what training did.

    Attributes:
        labels: the class names (tags, with multi_label), sorted; ids are positions in this tuple.
        multi_label: each text has any number of tags (one sigmoid per tag) instead of one class.
        maxlen: keep at most this many tokens of a text, cut from the `truncating` side
            ("pre" keeps the ending, "post" the beginning).
        padding: "post" (length-bucketed, masked batches) or "pre" (Keras-style fixed maxlen).
        vocab_size: words kept, incl. <pad> and <unk> (None: every training word).
        text_field, label_field, label_separator: where the texts and labels were read from, so
            `evaluate` reads held-out files the same way.
        class_weights: "balanced" weighs each class's loss by n / (k * count) (rare classes count more).
        threshold: multi_label: a tag is predicted when its probability is at least this.
        dataset: "imdb" for `rnnkit train imdb` (the preset over aclImdb: `evaluate` reads its test split),
            None for a user's own files.
    """

    labels: tuple[str, ...]
    multi_label: bool = False
    maxlen: int = 400
    truncating: str = "pre"
    padding: str = "post"
    vocab_size: int | None = 30000
    text_field: str | None = None
    label_field: str | None = None
    label_separator: str | None = None
    class_weights: str = "none"
    threshold: float = 0.5
    dataset: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        if (not all(isinstance(label, str) and label for label in self.labels)
                or len(set(self.labels)) != len(self.labels)):
            raise ConfigError(f"labels must be distinct, non-empty strings; got {list(self.labels)!r}")
        if len(self.labels) < (1 if self.multi_label else 2):
            raise ConfigError(f"a classifier needs at least two classes; got {list(self.labels)!r}")
        if not _is_int(self.maxlen) or not 1 <= self.maxlen <= MAX_MAXLEN:
            raise ConfigError(f"maxlen must be an integer in 1..{MAX_MAXLEN:,}; got {self.maxlen!r}")
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset must be one of {', '.join(map(str, DATASETS))}; got {self.dataset!r}")
        for name in ("truncating", "padding"):
            if getattr(self, name) not in ("pre", "post"):
                raise ConfigError(f"{name} must be 'pre' or 'post'; got {getattr(self, name)!r}")
        if self.vocab_size is not None and (not _is_int(self.vocab_size) or self.vocab_size < 3):
            raise ConfigError(f"vocab_size must be at least 3 (or 0 for every word); got {self.vocab_size!r}")
        if self.class_weights not in CLASS_WEIGHTS:
            raise ConfigError(f"class weights must be one of {', '.join(CLASS_WEIGHTS)}; got {self.class_weights!r}")
        if self.multi_label and self.class_weights != "none":
            raise ConfigError("--class-weights is for one class per text; with --multi-label leave it out")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"the threshold must be in (0, 1); got {self.threshold!r}")

    @property
    def kind(self) -> str:
        """"binary" (one sigmoid), "multiclass" (softmax) or "multilabel" (one sigmoid per tag)."""
        if self.multi_label:
            return "multilabel"
        return "binary" if len(self.labels) == 2 else "multiclass"

    @property
    def output_size(self) -> int:
        """Outputs of the model's head: 1 logit for two classes, else one per class."""
        return 1 if self.kind == "binary" else len(self.labels)

    def to_json(self) -> dict:
        from dataclasses import asdict

        return {**asdict(self), "labels": list(self.labels)}

    @classmethod
    def from_bundle(cls, settings: dict) -> "ClassifySettings":
        return cls(**{k: v for k, v in settings.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class PretrainedEmbeddings:
    """`--embeddings FILE`: word vectors (word2vec/GloVe/fastText text format, plain or .gz) that the
    embedding layer starts from (`rnnkit.data.embeddings`).

    Attributes:
        path: the vector file.
        freeze: keep the embedding fixed while the rest of the model learns (else fine-tune it).
        dim: the embedding size asked for (--embedding-dim): it must be the file's; None follows the file.
    """

    path: str | os.PathLike
    freeze: bool = False
    dim: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.freeze, bool):
            raise ConfigError(f"freeze must be true or false; got {self.freeze!r}")
        if self.dim is not None and (not _is_int(self.dim) or self.dim < 1):
            raise ConfigError(f"the embedding size must be a positive integer; got {self.dim!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

"""Sentiment of movie reviews (many-to-one): train, evaluate, predict.

Pipeline: text -> `tokenize` -> `Vocab` ids -> truncate to `maxlen` -> batch ->
embedding -> stacked recurrent layers -> pooling -> dense -> sigmoid.

Two batching modes (`SentimentSettings.padding`):
- "post" (default): length-bucketed batches, post-padded to the longest review
  in the batch, with masks: no compute or state is spent on padding.
- "pre": Keras-style fixed length: every review is pre-padded to `maxlen` and
  the model reads the padding too (to reproduce the classic Keras recipe).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rnnkit.bundle import Bundle, save_bundle
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.batching import Batch, iterate_batches, pad_batch, truncate
from rnnkit.data.vocab import UNK_ID, Vocab, tokenize
from rnnkit.errors import ConfigError, InputError
from rnnkit.tasks.engines import import_torch, many_to_one_logits

LABELS = ("negative", "positive")
EVAL_BATCH = 256


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
        if not _is_int(self.maxlen) or self.maxlen < 1:
            raise ConfigError(f"maxlen must be a positive integer; got {self.maxlen!r}")
        for name in ("truncating", "padding"):
            if getattr(self, name) not in ("pre", "post"):
                raise ConfigError(f"{name} must be 'pre' or 'post'; got {getattr(self, name)!r}")
        if self.vocab_size is not None and (not _is_int(self.vocab_size) or self.vocab_size < 3):
            raise ConfigError(f"vocab_size must be at least 3 (or 0 for every word); got {self.vocab_size}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------- batches

def make_batches(sequences: Sequence[np.ndarray], labels: np.ndarray | None, settings: SentimentSettings,
                 batch_size: int, rng: np.random.Generator | None) -> list[Batch]:
    """Batches in the settings' mode; `rng` shuffles (training), None keeps a fixed order."""
    cut = [truncate(s, settings.maxlen, settings.truncating) for s in sequences]
    if settings.padding == "post":
        return list(iterate_batches(cut, labels, batch_size, rng, bucket=True))
    return list(_fixed_length_batches(cut, labels, settings.maxlen, batch_size, rng))


def _fixed_length_batches(sequences, labels, maxlen, batch_size, rng):
    order = rng.permutation(len(sequences)) if rng is not None else np.arange(len(sequences))
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        ids, _ = pad_batch([sequences[i] for i in index], padding="pre", length=maxlen)
        lengths = np.full(len(index), maxlen, dtype=np.int64)  # the model reads the padding, as Keras does
        yield Batch(ids, lengths, None if labels is None else labels[index].astype(np.float32), index)


def stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): `fraction` of each class goes to validation."""
    train, val = [], []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        cut = max(1, int(round(len(members) * fraction)))
        val.append(members[:cut])
        train.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


# --------------------------------------------------------------------------- training

def train(sequences: Sequence[np.ndarray], labels: np.ndarray, vocab: Vocab, model_config: ModelConfig,
          train_config: TrainConfig, settings: SentimentSettings, out_dir: str | Path,
          progress: bool = True, extra_settings: dict | None = None, packed: bool = False,
          resume: bool = False, engine: str = "torch") -> dict:
    """Train a many-to-one model on encoded reviews; the best model is saved to `out_dir`.

    A validation split is carved from `sequences` (stratified); it picks the
    best epoch and drives early stopping. Returns the best validation metrics.
    `engine` "torch" (fast) or "numpy" (from scratch, no torch needed) trains
    the same model into the same bundle format. `packed` (torch) runs the
    recurrent layers on packed sequences instead of masked padded batches (same
    results; slower on CPU, see bench/packing.py). `resume` continues an
    interrupted run from `out_dir/checkpoint/`. Under torchrun each process
    trains on its share of the batches (see `rnnkit.training.distributed`);
    only the first one writes files and prints.
    """
    from rnnkit.training import Trainer, distributed, seed_everything

    _check_training_inputs(sequences, labels, vocab, model_config)
    if engine not in ("torch", "numpy"):
        raise ConfigError(f"engine must be torch or numpy; got {engine!r}")
    if engine == "numpy" and train_config.device != "cpu":
        raise ConfigError("the numpy engine runs on the CPU; leave out --device or use --engine torch")
    progress = progress and distributed.setup(engine, train_config.device).is_main
    parts = _torch_parts(model_config, train_config, packed) if engine == "torch" else _numpy_parts(model_config,
                                                                                                       train_config)
    rng = seed_everything(train_config.seed)
    model = parts.build()
    train_idx, val_idx = stratified_split(labels, train_config.validation_fraction, rng)
    train_seqs, train_labels = [sequences[i] for i in train_idx], labels[train_idx]
    val_seqs, val_labels = [sequences[i] for i in val_idx], labels[val_idx]
    saved_settings = {**asdict(settings), **(extra_settings or {}), "trained_with": engine}

    def validate(model) -> dict:
        return binary_metrics(parts.probabilities(model, val_seqs, settings), val_labels)

    def save(model, metrics: dict) -> None:
        save_bundle(out_dir, "sentiment", model_config, vocab.to_json(), parts.tensors(model),
                    settings=saved_settings, train=train_config.to_dict(),
                    metrics={f"val_{k}": v for k, v in metrics.items()})

    def batches(epoch: int, rng: np.random.Generator):
        return make_batches(train_seqs, train_labels, settings, train_config.batch_size, rng)

    if progress:
        print(f"training on {len(train_seqs)} reviews, validating on {len(val_seqs)} ({engine} engine); "
              f"model: {_describe(model_config)}", file=sys.stderr)
    trainer = Trainer(model, train_config, out_dir, save, progress=progress)
    trainer.fit(batches, parts.step, validate, rng, resume=resume)
    return trainer.best_metrics()


@dataclass(frozen=True)
class _EngineParts:
    """What training needs from one engine: build the model, one step, probabilities, tensors to save."""

    build: Callable[[], object]
    step: Callable
    probabilities: Callable[[object, Sequence[np.ndarray], SentimentSettings], np.ndarray]
    tensors: Callable[[object], dict]


def _torch_parts(model_config: ModelConfig, train_config: TrainConfig, packed: bool) -> _EngineParts:
    torch = import_torch()
    import torch.nn.functional as F

    from rnnkit.torch_engine import build_model, export_tensors
    from rnnkit.training.distributed import resolve_device

    torch.set_num_threads(train_config.threads or torch.get_num_threads())
    device = resolve_device(train_config.device)

    def step(model, batch: Batch):
        ids, lengths = torch.from_numpy(batch.ids).to(device), torch.from_numpy(batch.lengths).to(device)
        y = torch.from_numpy(batch.labels).to(device)
        logits = model(ids, lengths, packed=packed).squeeze(-1)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        return loss, len(y), {"accuracy": ((logits > 0).float() == y).sum().item()}

    def probabilities(model, sequences, settings) -> np.ndarray:
        def logits(ids, lengths):
            return model(torch.from_numpy(ids).to(device), torch.from_numpy(lengths).to(device)).cpu().numpy()
        return _probabilities(logits, sequences, settings)

    return _EngineParts(lambda: build_model(model_config).to(device), step, probabilities, export_tensors)


def _numpy_parts(model_config: ModelConfig, train_config: TrainConfig) -> _EngineParts:
    from rnnkit.numpy_engine import build_model
    from rnnkit.numpy_engine.losses import binary_cross_entropy_with_logits

    def step(model, batch: Batch, rng: np.random.Generator):
        logits = model.forward(batch.ids, batch.lengths, train=True, rng=rng)  # (N, 1)
        loss, dlogits = binary_cross_entropy_with_logits(logits, batch.labels[:, None])
        correct = int(np.sum((logits[:, 0] > 0) == (batch.labels > 0.5)))
        return loss, len(batch.labels), {"accuracy": correct}, model.backward(dlogits)

    def probabilities(model, sequences, settings) -> np.ndarray:
        return _probabilities(lambda ids, lengths: model.forward(ids, lengths), sequences, settings)

    def build():
        return build_model(model_config, rng=np.random.default_rng(train_config.seed))

    return _EngineParts(build, step, probabilities, lambda model: {k: v.copy() for k, v in model.params.items()})


def _probabilities(logits: Callable[[np.ndarray, np.ndarray], np.ndarray], sequences: Sequence[np.ndarray],
                   settings: SentimentSettings, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """P(positive) (N,) float64 of encoded, truncated reviews, given a logits(ids, lengths) -> (N, 1) function."""
    out = np.zeros(len(sequences), dtype=np.float64)
    for batch in make_batches(sequences, None, settings, batch_size, rng=None):
        z = np.asarray(logits(batch.ids, batch.lengths), dtype=np.float64).reshape(-1)
        out[batch.index] = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow
    return out


def _check_training_inputs(sequences, labels, vocab: Vocab, config: ModelConfig) -> None:
    if len(sequences) != len(labels):
        raise ConfigError(f"{len(sequences)} reviews but {len(labels)} labels")
    if len(sequences) < 4 or len(np.unique(labels)) < 2:
        raise ConfigError("training needs at least 4 reviews with both labels present")
    if config.vocab_size != len(vocab):
        raise ConfigError(f"model vocab_size {config.vocab_size} != vocabulary size {len(vocab)}")
    if config.output_size != 1:
        raise ConfigError("a sentiment model has one output (a sigmoid logit); set output_size=1")


def binary_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """loss (mean binary cross-entropy), accuracy, and the confusion matrix [[TN, FP], [FN, TP]]."""
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    y = labels.astype(np.float64)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    predicted = (probabilities > 0.5).astype(np.int64)
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"loss": loss, "accuracy": (tp + tn) / max(1, len(labels)), "precision": precision,
            "recall": recall, "f1": f1, "confusion_matrix": [[tn, fp], [fn, tp]], "count": int(len(labels))}


def _describe(c: ModelConfig) -> str:
    layers = " -> ".join([f"{'bi' if c.bidirectional else ''}{c.cell.upper()}({c.hidden_size})"] * c.num_layers)
    return f"Embedding({c.vocab_size}, {c.embedding_dim}) -> {layers} -> {c.pooling} -> Dense({c.output_size}) -> sigmoid"


# --------------------------------------------------------------------------- prediction

class SentimentModel:
    """A trained sentiment bundle, ready to predict.

        model = rnnkit.load("runs/imdb")
        model.predict(["A wonderful film."])[0]  # {"label": "positive", "probability": 0.97, ...}

    Attributes:
        bundle: the loaded bundle; engine: "numpy" or "torch".
    """

    def __init__(self, bundle: Bundle, engine: str = "numpy") -> None:
        self.bundle, self.engine = bundle, engine
        self.vocab = Vocab.from_json(bundle.vocab)
        known = {k: v for k, v in bundle.settings.items() if k in SentimentSettings.__dataclass_fields__}
        self.settings = SentimentSettings(**known)
        self._logits = many_to_one_logits(bundle, engine)

    def encode(self, text: str) -> tuple[np.ndarray, dict]:
        """Ids of `text` cut to maxlen, and facts about it (tokens, unknown, truncated)."""
        if not isinstance(text, str):
            raise InputError(f"a review must be a string; got {type(text).__name__}")
        tokens = tokenize(text)
        if not tokens:
            raise InputError("the review has no words (it is empty, or only spaces, punctuation or symbols); "
                             "give some text to judge")
        ids = np.asarray(self.vocab.encode(tokens), dtype=np.int64)
        unknown = int(np.sum(ids == UNK_ID))
        if unknown == len(ids):
            raise InputError(f"none of the {len(ids)} words of the review are in the model's vocabulary "
                             f"({len(self.vocab)} words), so it cannot be judged; write it in English words")
        cut = truncate(ids, self.settings.maxlen, self.settings.truncating)
        return np.asarray(cut), {"tokens": len(ids), "unknown": unknown, "truncated": len(ids) > len(cut)}

    def probabilities(self, sequences: Sequence[np.ndarray], batch_size: int = EVAL_BATCH) -> np.ndarray:
        """P(positive) for already-encoded, already-truncated id sequences; (N,) float64."""
        return _probabilities(self._logits, sequences, self.settings, batch_size)

    def predict(self, texts: Sequence[str] | str) -> list[dict]:
        """One dict per text: label, probability (of that label), probability_positive, token facts.

        Raises InputError for a text with no words or only unknown words.
        """
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)):
            raise InputError(f"predict takes a string or a list of strings; got {type(texts).__name__}")
        encoded = []
        for number, text in enumerate(texts):
            try:
                encoded.append(self.encode(text))
            except InputError as exc:
                raise InputError(f"review {number + 1}: {exc}") from None
        probs = self.probabilities([ids for ids, _ in encoded]) if encoded else np.zeros(0)
        return [_prediction(p, facts) for p, (_, facts) in zip(probs, encoded)]

    def evaluate(self, sequences: Sequence[np.ndarray], labels: np.ndarray) -> dict:
        """Metrics on encoded reviews (ids under this model's vocabulary)."""
        started = time.perf_counter()
        metrics = binary_metrics(self.probabilities(sequences), labels)
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        return metrics


def _prediction(p_positive: float, facts: dict) -> dict:
    label = int(p_positive >= 0.5)
    return {"label": LABELS[label], "probability": float(p_positive if label else 1 - p_positive),
            "probability_positive": float(p_positive), **facts}


# --------------------------------------------------------------------------- data sets

def imdb_train_split(source, vocab_size: int | None, progress: bool = True):
    """IMDB train reviews encoded with a `vocab_size` vocabulary built from them: (sequences, labels, vocab)."""
    from rnnkit.data.imdb import load_corpus

    corpus = load_corpus(source, progress=progress)
    vocab = corpus.vocab(vocab_size)
    sequences, labels = corpus.split("train", len(vocab))
    return sequences, labels, vocab


def imdb_split_for(vocab: Vocab, source, split: str = "test", progress: bool = True):
    """An IMDB split re-encoded under `vocab` (any bundle's vocabulary): (sequences, labels)."""
    from rnnkit.data.imdb import load_corpus

    corpus = load_corpus(source, progress=progress)
    table = np.asarray(vocab.encode(["<pad>", "<unk>", *corpus.words]), dtype=np.int64)  # corpus id -> bundle id
    return [table[ids] for ids in corpus.ids[split]], corpus.labels[split]


def demo_data(count: int = 4000, seed: int = 0, vocab: Vocab | None = None):
    """Generated reviews (see `rnnkit.data.synthetic`), encoded: (sequences, labels, vocab).

    The vocabulary is built from these reviews unless one is given (held-out sets).
    """
    from rnnkit.data.synthetic import generate_reviews
    from rnnkit.data.vocab import count_tokens

    texts, labels = generate_reviews(count, seed=seed)
    tokens = [tokenize(t) for t in texts]
    vocab = vocab or Vocab.build(count_tokens(tokens))
    return [np.asarray(vocab.encode(t), dtype=np.int64) for t in tokens], labels, vocab

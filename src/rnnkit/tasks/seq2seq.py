"""Sequence to sequence (encoder-decoder): train, translate, evaluate (exact match, BLEU), plot attention.

Pipeline: source text -> `PairVocab` ids -> encoder -> decoder (optionally
with attention) -> greedy or beam search (`rnnkit.decoding`) -> target text.

Data: a TSV pair file (``--pairs``), or a built-in generated task (``--task
dates`` or ``--task reverse``). A held-out test split is put aside first and
never used for model selection (pair files: ``--heldout`` of the distinct
source sentences; generated tasks: a fresh sample, minus any source seen in
training); a validation split picks the best epoch.

Input rules for `translate` (also in the README): empty or blank text is an
error; unknown tokens become <unk> (counted in ``unknown``; text with no known
token at all is an error); text longer than the model's ``max_source_len``
tokens is an error unless ``truncate=True``, which keeps the first
``max_source_len`` tokens and reports ``truncated: true``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from rnnkit.bundle import Bundle, save_bundle
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.generated import generated_pairs
from rnnkit.data.pairs import BOS_ID, EOS_ID, PAD_ID, UNK_ID, EncodedPairs, PairVocab, encode_pairs, split_by_source
from rnnkit.decoding import Hypothesis, beam_search, greedy
from rnnkit.errors import ConfigError, InputError

DATASETS = ("pairs", "dates", "reverse")
EVAL_BATCH = 256
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
            if not isinstance(value, int) or not 1 <= value <= MAX_OUTPUT_LEN - 1:
                raise ConfigError(f"{name} must be an integer in 1..{MAX_OUTPUT_LEN - 1}; got {value!r}")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ConfigError(f"teacher forcing ratio must be in [0, 1]; got {self.teacher_forcing!r}")


# --------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Splits:
    """(source, target) text pairs: train (fits), val (picks the best epoch), test (held out, reported)."""

    train: list[tuple[str, str]]
    val: list[tuple[str, str]]
    test: list[tuple[str, str]]


def pair_file_splits(pairs: Sequence[tuple[str, str]], heldout: float, val_fraction: float, seed: int) -> Splits:
    """Hold out `heldout` of the distinct sources as test, then `val_fraction` of the rest as validation."""
    rng = np.random.default_rng(seed)
    rest, test = split_by_source([s for s, _ in pairs], heldout, rng)
    rest_pairs = [pairs[i] for i in rest]
    train, val = split_by_source([s for s, _ in rest_pairs], val_fraction, rng)
    return Splits([rest_pairs[i] for i in train], [rest_pairs[i] for i in val], [pairs[i] for i in test])


def generated_splits(task: str, train_size: int, val_size: int, test_size: int, seed: int) -> Splits:
    """Fresh samples of a generated task: validation and test hold distinct sources never seen before them
    (a test source occurs neither in training nor in validation)."""
    for name, value in (("train size", train_size), ("validation size", val_size), ("test size", test_size)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer; got {value!r}")
    train = generated_pairs(task, train_size, seed)
    seen = {s for s, _ in train}
    val = _unseen(task, val_size, seed + 1, seen)
    return Splits(train, val, _unseen(task, test_size, seed + 2, seen))


def _unseen(task: str, count: int, seed: int, seen: set[str]) -> list[tuple[str, str]]:
    """`count` pairs with distinct sources not in `seen`; adds their sources to `seen`."""
    fresh = []
    for pair in generated_pairs(task, 3 * count + 10, seed):
        if pair[0] not in seen:
            seen.add(pair[0])
            fresh.append(pair)
            if len(fresh) == count:
                return fresh
    raise ConfigError(f"the {task} task has too few distinct examples left for {count} unseen pairs; "
                      "use a smaller --train-size or --test-size")


def build_vocabs(train_pairs: Sequence[tuple[str, str]], settings: Seq2SeqSettings, vocab_size: int | None = None,
                 min_freq: int = 1) -> tuple[PairVocab, PairVocab]:
    """Source and target vocabularies from the training pairs only."""
    source = PairVocab.build((s for s, _ in train_pairs), settings.source_level, settings.lowercase, vocab_size, min_freq)
    target = PairVocab.build((t for _, t in train_pairs), settings.target_level, settings.lowercase, vocab_size, min_freq)
    return source, target


def encode_split(pairs: Sequence[tuple[str, str]], source: PairVocab, target: PairVocab,
                 settings: Seq2SeqSettings) -> EncodedPairs:
    return encode_pairs(pairs, source, target, settings.max_source_len, settings.max_target_len)[0]


# --------------------------------------------------------------------------- batches

@dataclass(frozen=True)
class PairBatch:
    """src (N, S) (all of one length), src_lengths (N,), tgt_in (N, T) = <s> y, tgt_out (N, T) = y </s>, index (N,)."""

    src: np.ndarray
    src_lengths: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    index: np.ndarray


def make_batches(data: EncodedPairs, batch_size: int, rng: np.random.Generator | None) -> list[PairBatch]:
    """Batches whose sources all have one length (no source padding: the fused RNN kernel runs exactly).

    `rng` shuffles pairs and batch order (training); None keeps a fixed order.
    """
    lengths = np.fromiter((len(s) for s in data.sources), dtype=np.int64, count=len(data))
    order = rng.permutation(len(data)) if rng is not None else np.arange(len(data))
    batches = []
    for length in np.unique(lengths):
        group = order[lengths[order] == length]
        batches.extend(_batch(data, group[i:i + batch_size]) for i in range(0, len(group), batch_size))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _batch(data: EncodedPairs, index: np.ndarray) -> PairBatch:
    src = np.stack([data.sources[i] for i in index])
    width = max(len(data.targets[i]) for i in index) + 1
    tgt_in = np.full((len(index), width), PAD_ID, dtype=np.int64)
    tgt_out = np.full((len(index), width), PAD_ID, dtype=np.int64)
    for row, i in enumerate(index):
        y = data.targets[i]
        tgt_in[row, 0], tgt_in[row, 1:len(y) + 1] = BOS_ID, y
        tgt_out[row, :len(y)], tgt_out[row, len(y)] = y, EOS_ID
    return PairBatch(src, np.full(len(index), src.shape[1], dtype=np.int64), tgt_in, tgt_out, index)


# --------------------------------------------------------------------------- training

def train(train_data: EncodedPairs, val_data: EncodedPairs, source: PairVocab, target: PairVocab,
          model_config: ModelConfig, train_config: TrainConfig, settings: Seq2SeqSettings, out_dir: str | Path,
          progress: bool = True, extra_settings: dict | None = None) -> dict:
    """Train an encoder-decoder with the torch engine; the best model (validation loss) is saved to `out_dir`.

    Returns the best validation metrics: loss (per target token), accuracy
    (per target token, teacher-forced) and exact_match (greedy decoding).
    """
    from rnnkit.tasks.engines import import_torch

    torch = import_torch()
    import torch.nn.functional as F

    from rnnkit.torch_engine import export_tensors
    from rnnkit.torch_engine.seq2seq import EncoderDecoder
    from rnnkit.training import Trainer, distributed, seed_everything

    _check_training_inputs(train_data, val_data, source, target, model_config)
    progress = progress and distributed.setup("torch", train_config.device).is_main  # torchrun: rank 0 prints
    rng = seed_everything(train_config.seed)
    torch.set_num_threads(train_config.threads or torch.get_num_threads())
    device = torch.device(train_config.device)
    model = EncoderDecoder(model_config).to(device)
    generator = torch.Generator(device=device).manual_seed(train_config.seed)
    saved_settings = {**asdict(settings), **(extra_settings or {})}
    vocab = {"source": source.to_json(), "target": target.to_json()}

    def step(model, batch: PairBatch):
        src, tgt_in, tgt_out = (torch.from_numpy(a).to(device) for a in (batch.src, batch.tgt_in, batch.tgt_out))
        logits = model(src, torch.from_numpy(batch.src_lengths), tgt_in, settings.teacher_forcing, generator)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD_ID)
        real = tgt_out != PAD_ID
        correct = ((logits.argmax(-1) == tgt_out) & real).sum().item()
        return loss, int(real.sum().item()), {"accuracy": correct}

    def validate(model) -> dict:
        return torch_metrics(model, val_data, device, max_len=settings.max_target_len + 1)

    def save(model, metrics: dict) -> None:
        save_bundle(out_dir, "seq2seq", model_config, vocab, export_tensors(model), settings=saved_settings,
                    train=train_config.to_dict(), metrics={f"val_{k}": v for k, v in metrics.items()})

    def batches(epoch: int, rng: np.random.Generator):
        return make_batches(train_data, train_config.batch_size, rng)

    if progress:
        print(f"training on {len(train_data)} pairs, validating on {len(val_data)}; model: "
              f"{describe(model_config)}", file=sys.stderr)
    trainer = Trainer(model, train_config, out_dir, save, progress=progress)
    trainer.fit(batches, step, validate, rng)
    return trainer.best_metrics()  # on every rank: under torchrun `save` runs on rank 0 only


def train_numpy(train_data: EncodedPairs, val_data: EncodedPairs, source: PairVocab, target: PairVocab,
                model_config: ModelConfig, train_config: TrainConfig, settings: Seq2SeqSettings,
                out_dir: str | Path, progress: bool = True, extra_settings: dict | None = None) -> dict:
    """Train with the numpy engine (hand-written BPTT; any cell, depth, attention, teacher forcing).

    The same `Trainer` loop, batches, loss and validation as `train` (optimizer,
    clipping, early stopping, history, checkpoints); the best model (validation
    loss) is saved to `out_dir`. Returns the best validation metrics.
    """
    from rnnkit.numpy_engine import build_model
    from rnnkit.numpy_engine.losses import cross_entropy_with_logits
    from rnnkit.training import Trainer, seed_everything

    _check_training_inputs(train_data, val_data, source, target, model_config)
    rng = seed_everything(train_config.seed)
    model = build_model(model_config, rng=np.random.default_rng(train_config.seed))
    saved_settings = {**asdict(settings), **(extra_settings or {})}
    vocab = {"source": source.to_json(), "target": target.to_json()}
    best: dict = {}

    def step(model, batch: PairBatch, rng: np.random.Generator):
        logits = model.forward(batch.src, batch.src_lengths, batch.tgt_in, train=True, rng=rng,
                               teacher_forcing=settings.teacher_forcing)
        loss, dlogits = cross_entropy_with_logits(logits, batch.tgt_out, ignore_index=PAD_ID)
        real = batch.tgt_out != PAD_ID
        correct = int(((logits.argmax(-1) == batch.tgt_out) & real).sum())
        return loss, int(real.sum()), {"accuracy": correct}, model.backward(dlogits)

    def validate(model) -> dict:
        return numpy_metrics(model_config, model.params, val_data, max_len=settings.max_target_len + 1)

    def save(model, metrics: dict) -> None:
        best.clear()
        best.update(metrics)
        save_bundle(out_dir, "seq2seq", model_config, vocab, model.params, settings=saved_settings,
                    train={**train_config.to_dict(), "engine": "numpy"},
                    metrics={f"val_{k}": v for k, v in metrics.items()})

    def batches(epoch: int, rng: np.random.Generator):
        return make_batches(train_data, train_config.batch_size, rng)

    if progress:
        print(f"training on {len(train_data)} pairs, validating on {len(val_data)} (numpy engine); model: "
              f"{describe(model_config)}", file=sys.stderr)
    Trainer(model, train_config, out_dir, save, progress=progress).fit(batches, step, validate, rng)
    return best


def numpy_metrics(config: ModelConfig, tensors: dict, data: EncodedPairs, max_len: int) -> dict:
    """Teacher-forced loss and token accuracy, and greedy exact match, computed by the numpy engine."""
    from rnnkit.numpy_engine.losses import cross_entropy_with_logits
    from rnnkit.tasks import seq2seq_numpy as npx

    backend = npx.NumpyBackend(config, tensors)
    loss_sum, tokens, correct, exact = 0.0, 0, 0, 0
    for batch in make_batches(data, EVAL_BATCH, rng=None):
        logits = backend.model.forward(batch.src, batch.src_lengths, batch.tgt_in)
        loss, _ = cross_entropy_with_logits(logits, batch.tgt_out, ignore_index=PAD_ID)
        real = batch.tgt_out != PAD_ID
        loss_sum, tokens = loss_sum + loss * int(real.sum()), tokens + int(real.sum())
        correct += int(((logits.argmax(-1) == batch.tgt_out) & real).sum())
        hyps = greedy(backend.step, backend.start(batch.src, batch.src_lengths), len(batch.index), BOS_ID, EOS_ID,
                      max_len)
        exact += sum(h.tokens == data.targets[i].tolist() for h, i in zip(hyps, batch.index))
    return {"loss": loss_sum / max(1, tokens), "accuracy": correct / max(1, tokens),
            "exact_match": exact / max(1, len(data))}


def _check_training_inputs(train_data, val_data, source, target, config: ModelConfig) -> None:
    if config.architecture != "encoder_decoder":
        raise ConfigError("a seq2seq model needs architecture encoder_decoder")
    if len(train_data) < 2 or len(val_data) < 1:
        raise ConfigError(f"need at least 2 training pairs and 1 validation pair; got {len(train_data)} and "
                          f"{len(val_data)} (check the length filters --max-source-len / --max-target-len)")
    if config.vocab_size != len(source) or config.target_vocab_size != len(target):
        raise ConfigError(f"model vocabularies ({config.vocab_size}, {config.target_vocab_size}) differ from the "
                          f"data's ({len(source)}, {len(target)})")


def torch_metrics(model, data: EncodedPairs, device, max_len: int) -> dict:
    """Teacher-forced loss and token accuracy, and greedy exact match, of a torch model on `data`."""
    import torch
    import torch.nn.functional as F

    loss_sum, tokens, correct, exact = 0.0, 0, 0, 0
    for batch in make_batches(data, EVAL_BATCH, rng=None):
        src, tgt_in, tgt_out = (torch.from_numpy(a).to(device) for a in (batch.src, batch.tgt_in, batch.tgt_out))
        lengths = torch.from_numpy(batch.src_lengths)
        logits = model(src, lengths, tgt_in)
        real = tgt_out != PAD_ID
        loss_sum += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                                    ignore_index=PAD_ID, reduction="sum").item()
        tokens += int(real.sum())
        correct += int(((logits.argmax(-1) == tgt_out) & real).sum())
        backend = TorchBackend(model, device)
        hyps = greedy(backend.step, backend.start(batch.src, batch.src_lengths), len(batch.index), BOS_ID, EOS_ID,
                      max_len)
        exact += sum(h.tokens == data.targets[i].tolist() for h, i in zip(hyps, batch.index))
    return {"loss": loss_sum / max(1, tokens), "accuracy": correct / max(1, tokens),
            "exact_match": exact / max(1, len(data))}


def describe(c: ModelConfig) -> str:
    enc = f"{'bi' if c.bidirectional else ''}{c.cell.upper()}({c.hidden_size})x{c.num_layers}"
    dec = f"{c.cell.upper()}({c.hidden_size * c.num_directions})x{c.num_layers}"
    attention = "" if c.attention == "none" else f" + {c.attention} attention"
    return (f"Embedding({c.vocab_size}, {c.embedding_dim}) -> {enc} => Embedding({c.target_vocab_size}, "
            f"{c.embedding_dim}) -> {dec}{attention} -> Dense({c.target_vocab_size})")


# --------------------------------------------------------------------------- engines

class TorchBackend:
    """Decoding functions over a torch EncoderDecoder (numpy in, numpy out; see rnnkit.decoding)."""

    def __init__(self, module, device="cpu") -> None:
        self.module, self.device = module, device

    def start(self, ids: np.ndarray, lengths: np.ndarray):
        import torch

        with torch.no_grad():
            memory, state = self.module.encode(torch.from_numpy(ids).to(self.device), torch.from_numpy(lengths))
        return state, memory

    def step(self, tokens: np.ndarray, state):
        import torch

        rnn_state, memory = state
        with torch.no_grad():
            logits, rnn_state, weights = self.module.decode_step(torch.from_numpy(tokens).to(self.device),
                                                                 rnn_state, memory)
            logp = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return logp, (rnn_state, memory), None if weights is None else weights.cpu().numpy()

    @staticmethod
    def select(state, rows: np.ndarray):
        import torch

        from rnnkit.torch_engine.seq2seq import select_state

        rnn_state, memory = state
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        return select_state(rnn_state, index), memory.select(index)


def make_backend(bundle: Bundle, engine: str):
    """The decoding backend of `bundle` on `engine` ("numpy" or "torch")."""
    if engine == "torch":
        from rnnkit.tasks.engines import import_torch

        import_torch()
        from rnnkit.torch_engine import load_tensors
        from rnnkit.torch_engine.seq2seq import EncoderDecoder

        return TorchBackend(load_tensors(EncoderDecoder(bundle.config), bundle.tensors).eval())
    if engine == "numpy":
        from rnnkit.tasks.seq2seq_numpy import NumpyBackend

        return NumpyBackend(bundle.config, bundle.tensors)
    raise InputError(f"unknown engine {engine!r}; use numpy or torch")


# --------------------------------------------------------------------------- prediction

class Seq2SeqModel:
    """A trained seq2seq bundle, ready to translate.

        model = rnnkit.tasks.load_predictor("runs/dates")
        model.translate(["the 3rd of March, 2021"])[0]["translation"]   # "2021-03-03"
    """

    def __init__(self, bundle: Bundle, engine: str = "numpy") -> None:
        self.bundle, self.engine = bundle, engine
        self.source = PairVocab.from_json(bundle.vocab.get("source"))
        self.target = PairVocab.from_json(bundle.vocab.get("target"))
        known = {k: v for k, v in bundle.settings.items() if k in Seq2SeqSettings.__dataclass_fields__}
        self.settings = Seq2SeqSettings(**known)
        self.backend = make_backend(bundle, engine)

    def encode(self, text: str, truncate: bool = False) -> tuple[np.ndarray, dict]:
        """Source ids of `text` and facts about it (tokens, unknown, truncated); InputError if unusable."""
        if not isinstance(text, str):
            raise InputError(f"the text must be a string; got {type(text).__name__}")
        ids = self.source.encode(text)
        if not ids:
            raise InputError("the text is empty (or only spaces); give a sentence to translate")
        unknown = sum(i == UNK_ID for i in ids)
        if unknown == len(ids):
            raise InputError(f"none of the {len(ids)} {self.source.level}s of the text are in the model's source "
                             f"vocabulary ({len(self.source)} tokens), so it cannot be translated")
        limit = self.settings.max_source_len
        if len(ids) > limit and not truncate:
            raise InputError(f"the text has {len(ids)} {self.source.level}s, more than this model's maximum of "
                             f"{limit}; shorten it, or pass --truncate to keep the first {limit}")
        return np.asarray(ids[:limit], dtype=np.int64), {"tokens": len(ids), "unknown": unknown,
                                                         "truncated": len(ids) > limit}

    def decode(self, sources: Sequence[np.ndarray], beam: int = 1, max_len: int | None = None,
               alpha: float = 1.0, batch_size: int = EVAL_BATCH) -> list[Hypothesis]:
        """Decode encoded sources (each (S_i,) ids); batches group sources of one length."""
        max_len = self._check_decoding(beam, max_len, alpha)
        dummy = EncodedPairs(list(sources), [np.zeros(1, dtype=np.int64)] * len(sources))
        out: list[Hypothesis | None] = [None] * len(sources)
        for batch in make_batches(dummy, batch_size, rng=None):
            state = self.backend.start(batch.src, batch.src_lengths)
            if beam == 1:
                hyps = greedy(self.backend.step, state, len(batch.index), BOS_ID, EOS_ID, max_len)
            else:
                hyps = beam_search(self.backend.step, self.backend.select, state, len(batch.index), BOS_ID, EOS_ID,
                                   max_len, beam, alpha)
            for i, h in zip(batch.index, hyps):
                out[i] = h
        return out

    def _check_decoding(self, beam: int, max_len: int | None, alpha: float) -> int:
        if not isinstance(beam, int) or not 1 <= beam <= MAX_BEAM:
            raise InputError(f"beam size must be an integer in 1..{MAX_BEAM}; got {beam!r}")
        if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 5.0):
            raise InputError(f"length-normalisation alpha must be in [0, 5]; got {alpha!r}")
        if max_len is None:
            return self.settings.max_target_len + 1
        if not isinstance(max_len, int) or not 1 <= max_len <= MAX_OUTPUT_LEN:
            raise InputError(f"maximum output length must be an integer in 1..{MAX_OUTPUT_LEN}; got {max_len!r}")
        return max_len

    def translate(self, texts: Sequence[str] | str, beam: int = 1, max_len: int | None = None,
                  alpha: float = 1.0, truncate: bool = False) -> list[dict]:
        """One dict per text: translation, score, finished (</s> reached), tokens, unknown, truncated."""
        if isinstance(texts, str):
            texts = [texts]
        encoded = []
        for number, text in enumerate(texts):
            try:
                encoded.append(self.encode(text, truncate))
            except InputError as exc:
                if len(texts) == 1:
                    raise
                raise InputError(f"text {number + 1}: {exc}") from None
        hyps = self.decode([ids for ids, _ in encoded], beam, max_len, alpha) if encoded else []
        return [{"translation": self.target.decode(h.tokens), "score": round(h.score, 6), "finished": h.finished,
                 **facts} for h, (_, facts) in zip(hyps, encoded)]

    def evaluate(self, sources: Sequence[str], references: Sequence[Sequence[str]], beam: int = 1,
                 alpha: float = 1.0) -> dict:
        """Exact match and BLEU (sacrebleu, lower-cased) of translations of `sources`.

        references[i] lists every accepted translation of sources[i]; exact match
        counts a translation equal (after tokenizing) to any of them.
        """
        started = time.perf_counter()
        ids = [self.encode(s, truncate=True)[0] for s in sources]
        hyps = [self.target.decode(h.tokens) for h in self.decode(ids, beam, None, alpha)]
        norm = lambda text: self.target.tokens(text)  # noqa: E731 - compare token sequences, not spacing
        exact = sum(any(norm(h) == norm(r) for r in refs) for h, refs in zip(hyps, references))
        return {"exact_match": exact / max(1, len(sources)), "bleu": corpus_bleu(hyps, references),
                "count": len(sources), "beam": beam, "seconds": round(time.perf_counter() - started, 2),
                "hypotheses": hyps}

    def plot_attention(self, text: str, path: str | Path, beam: int = 1, truncate: bool = False) -> Path:
        """Draw the attention weights (output tokens x source tokens) of one translation as a PNG."""
        if self.bundle.config.attention == "none":
            raise InputError("this model has no attention to plot; train it with --attention")
        ids, _ = self.encode(text, truncate)
        hyp = self.decode([ids], beam)[0]
        source = self.source.vocab.decode(ids.tolist())
        output = self.target.vocab.decode(hyp.tokens) + (["</s>"] if hyp.finished else [])
        return plot_attention_weights(hyp.attention[:len(output)], source, output, path)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (sacrebleu, 13a tokenization, lower-cased) with any number of references per sentence."""
    try:
        import sacrebleu
    except ImportError:
        raise ConfigError("BLEU needs sacrebleu: pip install 'rnnkit[seq2seq]' (or pip install sacrebleu)") from None
    width = max((len(r) for r in references), default=1)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]
    return float(sacrebleu.corpus_bleu(list(hypotheses), streams, lowercase=True).score)


def plot_attention_weights(weights: np.ndarray, source: Sequence[str], output: Sequence[str],
                           path: str | Path) -> Path:
    """Save weights (len(output), len(source)) as a heat map with token labels; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnkit.fileio import atomic_path

    show = lambda tokens: [t if t != " " else "␣" for t in tokens]  # noqa: E731 - make spaces visible
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(source) + 2), max(3, 0.35 * len(output) + 1.5)), dpi=100)
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(source)), show(source), rotation=90)
    ax.set_yticks(range(len(output)), show(output))
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- command line

def register(commands, train_tasks) -> None:
    """Add `rnnkit train seq2seq` and `rnnkit translate` to the CLI."""
    import argparse

    from rnnkit.cli import add_train_arguments

    cmd = train_tasks.add_parser(
        "seq2seq", help="encoder-decoder on a TSV pair file or a built-in task (dates, reverse)",
        description="Train an encoder-decoder (optionally with attention); report exact match and BLEU "
                    "on a held-out split.")
    data = cmd.add_mutually_exclusive_group(required=True)
    data.add_argument("--pairs", help="UTF-8 TSV file: source<TAB>target per line (more columns are ignored)")
    data.add_argument("--task", choices=("dates", "reverse"), help="built-in generated task (no download)")
    cmd.add_argument("--out", required=True, help="bundle directory")
    text = cmd.add_argument_group("data")
    text.add_argument("--source-level", choices=("word", "char"), help="tokens (default: word for --pairs, char for --task)")
    text.add_argument("--target-level", choices=("word", "char"), help="(default: as --source-level)")
    text.add_argument("--no-lowercase", action="store_true", help="keep case (default: lower-case both sides)")
    text.add_argument("--max-source-len", type=int, default=50, help="drop training pairs with a longer source, in tokens; "
                      "translate refuses longer input unless --truncate (default %(default)s)")
    text.add_argument("--max-target-len", type=int, default=50, help="drop training pairs with a longer target; "
                      "also the default output limit (default %(default)s)")
    text.add_argument("--vocab-size", type=int, default=0, help="tokens per vocabulary incl. 4 reserved; 0 = all (default)")
    text.add_argument("--min-freq", type=int, default=1, help="keep tokens seen at least this often (default %(default)s)")
    text.add_argument("--heldout", type=float, default=0.1, help="share of distinct sources held out for the test "
                      "report (--pairs; default %(default)s)")
    text.add_argument("--train-size", type=int, default=50000, help="generated training pairs (--task; default %(default)s)")
    text.add_argument("--test-size", type=int, default=2000, help="generated held-out pairs (--task; default %(default)s)")
    model = cmd.add_argument_group("model")
    model.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="gru", help="(default %(default)s)")
    model.add_argument("--layers", type=int, default=1, help="encoder and decoder layers (default %(default)s)")
    model.add_argument("--embedding-dim", type=int, default=64, help="(default %(default)s)")
    model.add_argument("--hidden", type=int, default=128, help="encoder units per direction; the decoder has "
                       "this x directions (default %(default)s)")
    model.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=True,
                       help="bidirectional encoder (default %(default)s)")
    model.add_argument("--dropout", type=float, default=0.1, help="(default %(default)s)")
    model.add_argument("--attention", nargs="?", const="luong", default="luong", choices=("none", "bahdanau", "luong"),
                       help="luong (multiplicative; also the bare flag), bahdanau (additive) or none (default %(default)s)")
    model.add_argument("--teacher-forcing", type=float, default=1.0,
                       help="probability of feeding the true previous token in training (default %(default)s)")
    add_train_arguments(cmd, epochs=10, batch_size=64, lr=2e-3, patience=3)
    cmd.set_defaults(func=cmd_train_seq2seq)

    tr = commands.add_parser("translate", help="translate text with a seq2seq bundle (greedy or beam search)")
    tr.add_argument("bundle", help="bundle directory written by rnnkit train seq2seq")
    tr.add_argument("texts", nargs="*", help='texts to translate; "-" reads one per line from stdin (JSON lines out)')
    tr.add_argument("--beam", type=int, default=1, help="beam width; 1 = greedy (default %(default)s)")
    tr.add_argument("--alpha", type=float, default=1.0, help="beam length normalisation: score = log P / length^alpha "
                    "(default %(default)s)")
    tr.add_argument("--max-len", type=int, help="most output tokens (default: the model's --max-target-len + 1)")
    tr.add_argument("--truncate", action="store_true", help="cut over-long input to the model's maximum instead of refusing it")
    tr.add_argument("--engine", choices=("auto", "numpy", "torch"), default="auto",
                    help="auto: numpy when it runs this model, else torch (default %(default)s)")
    tr.add_argument("--plot-attention", metavar="PNG", help="save the attention weights of the (first) text as a PNG")
    tr.add_argument("--json", action="store_true", help="print one JSON object per text")
    tr.set_defaults(func=cmd_translate)


def settings_from(args) -> Seq2SeqSettings:
    default_level = "word" if args.pairs else "char"
    source_level = args.source_level or default_level
    return Seq2SeqSettings(dataset="pairs" if args.pairs else args.task, source_level=source_level,
                           target_level=args.target_level or source_level, lowercase=not args.no_lowercase,
                           max_source_len=args.max_source_len, max_target_len=args.max_target_len,
                           teacher_forcing=args.teacher_forcing)


def load_splits(args, seed: int, val_fraction: float) -> Splits:
    if args.pairs:
        from rnnkit.data.pairs import read_pairs

        return pair_file_splits(read_pairs(args.pairs), args.heldout, val_fraction, seed)
    val_size = max(1, int(round(args.train_size * val_fraction)))
    return generated_splits(args.task, args.train_size, val_size, args.test_size, seed)


def cmd_train_seq2seq(args) -> int:
    from rnnkit.cli import _check_output_dir, train_config_from
    from rnnkit.data.pairs import group_references

    out = _check_output_dir(args.out)
    settings = settings_from(args)  # validate every option before reading any data
    train_config = train_config_from(args)
    splits = load_splits(args, train_config.seed, train_config.validation_fraction)
    source, target = build_vocabs(splits.train, settings, args.vocab_size or None, args.min_freq)
    train_data, val_data = (encode_split(p, source, target, settings) for p in (splits.train, splits.val))
    model_config = ModelConfig(vocab_size=len(source), target_vocab_size=len(target), architecture="encoder_decoder",
                               cell=args.cell, num_layers=args.layers, embedding_dim=args.embedding_dim,
                               hidden_size=args.hidden, bidirectional=args.bidirectional, dropout=args.dropout,
                               attention=args.attention)
    extra = {"pairs": str(args.pairs) if args.pairs else None, "heldout": args.heldout}
    started = time.perf_counter()
    fit = train_numpy if args.engine == "numpy" else train
    best = fit(train_data, val_data, source, target, model_config, train_config, settings, out,
               progress=not args.quiet, extra_settings=extra)
    minutes = (time.perf_counter() - started) / 60
    print(f"best validation: loss {best['loss']:.4f}, exact match {best['exact_match']:.4f} ({minutes:.1f} min); "
          f"bundle saved to {out}")
    from rnnkit.tasks import load_predictor

    model = load_predictor(out, engine=args.engine)
    sources, references = group_references([s for s, _ in splits.test], [t for _, t in splits.test])
    metrics = model.evaluate(sources, references)
    print(f"held-out test ({metrics['count']} sources, greedy): exact match {metrics['exact_match']:.4f}, "
          f"BLEU {metrics['bleu']:.2f}")
    print(f'next: rnnkit translate {out} "{sources[0]}" [--beam 5]')
    return 0


def cmd_translate(args) -> int:
    import json

    from rnnkit.cli import _checked_utf8
    from rnnkit.tasks import load_predictor

    engine = args.engine
    if engine == "auto":
        engine = "numpy" if numpy_engine_supports(args.bundle) else "torch"
    model = load_predictor(args.bundle, engine=engine)
    options = {"beam": args.beam, "max_len": args.max_len, "alpha": args.alpha, "truncate": args.truncate}
    if args.texts == ["-"]:
        return _translate_stream(model, sys.stdin.buffer, options)
    if not args.texts:
        raise InputError('give a text to translate, e.g. rnnkit translate BUNDLE "I am cold.", or - to read stdin')
    texts = [_checked_utf8(t, "the text to translate") for t in args.texts]
    for number, (result, text) in enumerate(zip(model.translate(texts, **options), texts), start=1):
        if args.json:
            print(json.dumps({"text": text, **result}, ensure_ascii=False))
            continue
        print(result["translation"] + ("  (truncated input)" if result["truncated"] else ""))
        if result["unknown"]:
            print(f"rnnkit: note: {result['unknown']} of the {result['tokens']} tokens of text {number} are not in "
                  "the model's vocabulary (read as <unk>)", file=sys.stderr)
    if args.plot_attention:
        path = model.plot_attention(texts[0], args.plot_attention, beam=args.beam, truncate=args.truncate)
        print(f"attention weights saved to {path}", file=sys.stderr)
    return 0


def numpy_engine_supports(bundle_path) -> bool:
    """Whether the numpy engine can run the bundle's model (read from its config.json only)."""
    from rnnkit.bundle import CONFIG_FILE, read_json

    try:
        attention = read_json(Path(bundle_path) / CONFIG_FILE, "bundle config")["model"]["attention"]
    except Exception:  # load_predictor reports a damaged bundle properly
        return False
    from rnnkit.tasks.seq2seq_numpy import SUPPORTED_ATTENTION

    return attention in SUPPORTED_ATTENTION


def _translate_stream(model, stream, options: dict) -> int:
    """One text per input line -> one JSON object per output line; bad lines get {"error": ...}."""
    import json

    failures = 0
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.rstrip(b"\r\n").decode("utf-8")
            result = {"line": number, **model.translate([text], **options)[0]}
        except UnicodeDecodeError:
            result = {"line": number, "error": "not valid UTF-8; re-encode the input (e.g. iconv -t UTF-8)"}
        except InputError as exc:
            result = {"line": number, "error": str(exc)}
        failures += "error" in result
        print(json.dumps(result, ensure_ascii=False), flush=True)
    if failures:
        print(f"rnnkit: {failures} line(s) could not be translated (see their \"error\")", file=sys.stderr)
    return 1 if failures else 0

"""Character-level language model (many-to-many): train on any text, evaluate, generate.

Key: N batch (parallel streams), T time steps, V vocabulary (characters + <unk>),
H hidden size, L layers.

Pipeline: text -> `CharVocab` ids -> N contiguous streams cut into T-step
chunks (truncated BPTT; the hidden state is carried from one chunk to the
next and reset at each epoch's start) -> embedding -> stacked rnn | lstm | gru
-> dense head at every step -> logits (N, T, V) -> cross-entropy with the next
character.

Losses are natural-log (nats) per character; bits per character = nats / ln 2.
Validation reads the last `validation_fraction` of the text (never shuffled)
as a few long streams with the state carried, so almost every character is
predicted with a warm state.

Sampling is engine-independent: the engine (numpy or torch) only computes
logits; `pick_next` turns them into a character with one numpy Generator
(temperature, optional top-k, inverse-CDF draw), so a bundle generates the
same text for the same seed on either engine.

Input rules (also in the README): the prime may only hold characters seen in
training (others are named in the error); temperature must be a finite
number > 0; length 1..`MAX_LENGTH`; top-k 1..(characters in the vocabulary),
or None for no cut; an empty prime starts from a newline (or, when the text
had none, its most frequent character).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from rnnkit.bundle import Bundle, save_bundle
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.text import UNK_ID, CharVocab, chunk_batches, describe_characters, split_text, stream_layout
from rnnkit.errors import ConfigError, DataError, InputError

LN2 = math.log(2.0)
MAX_LENGTH = 100_000       # most characters one generate call may produce
MAX_PRIME_CHARS = 100_000  # longest prime (read in PRIME_CHUNK pieces, so memory stays bounded)
PRIME_CHUNK = 256
EVAL_STREAMS = 16          # parallel streams when scoring a text
EVAL_MIN_STREAM = 1000     # ... each at least this long, so few characters start from a cold state
EVAL_CHUNK = 256
SAMPLE_CHARS = 200         # length of the samples shown while training
PRECISIONS = ("auto", "fp32", "bf16")

# A step function runs the model on a chunk: (ids (N, T) int64, state or None) -> (logits (N, T, V), state).
# The state is engine-specific and opaque to the callers.
StepFn = Callable[[np.ndarray, object], tuple[np.ndarray, object]]


@dataclass(frozen=True)
class CharLMSettings:
    """Data and sampling settings, saved in the bundle.

    Attributes:
        seq_len: T, characters per chunk of truncated BPTT.
        sample_every: print a short sample every this many training steps (0 = only at epoch ends).
        text: the training text's path (informational; `rnnkit evaluate` uses it when --text is left out).
        precision: the training forward pass in "fp32", "bf16" (torch autocast; weights, gradients and
            the optimizer stay float32) or "auto": bf16 on a CPU with AMX-BF16 (measured 2.4x faster
            per step on this machine's Xeon, the same validation curve), else fp32. Evaluation and
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


# --------------------------------------------------------------------------- data


def prepare_text(text: str, validation_fraction: float, settings: CharLMSettings,
                 batch_size: int) -> tuple[CharVocab, np.ndarray, np.ndarray]:
    """(vocab built from the training part, train ids (M,), validation ids (M_val,)).

    Raises DataError when the text is too short for the batch layout.
    """
    if not text.strip():
        raise DataError("the text is empty (or only white space); a language model needs text to learn from")
    train_text, val_text = split_text(text, validation_fraction)
    if len(val_text) < 2:
        raise DataError(f"the text has only {len(text)} characters, too few to hold out a validation part; "
                        "use a longer text")
    vocab = CharVocab.build(train_text)
    train_ids = vocab.encode(train_text)
    needed = batch_size * settings.seq_len + 1
    if len(train_ids) < needed:
        raise DataError(f"the training part has {len(train_ids)} characters but --batch-size {batch_size} x "
                        f"--seq-len {settings.seq_len} needs at least {needed}; use a longer text or "
                        "smaller values")
    return vocab, train_ids, vocab.encode(val_text)


def epoch_chunks(train_ids: np.ndarray, batch_size: int, seq_len: int, rng: np.random.Generator) -> list:
    """One epoch of chunks; a random start offset in [0, T) moves the chunk boundaries each epoch."""
    room = (len(train_ids) - 1) // batch_size - seq_len  # offset that still leaves one full chunk per stream
    offset = int(rng.integers(0, min(seq_len, room) + 1)) if room > 0 else 0
    return chunk_batches(train_ids, batch_size, seq_len, offset)


# --------------------------------------------------------------------------- scoring


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, in float64."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def score_ids(step: StepFn, ids: np.ndarray) -> dict:
    """Loss of predicting each character of ids (M,) from the ones before it, with the state carried.

    The ids are read as up to EVAL_STREAMS side-by-side streams in EVAL_CHUNK pieces.
    Targets that are <unk> (characters the model never saw) are not scored but counted.
    Returns loss (nats/char), bpc, accuracy (top-1 next character), chars (scored), unknown.
    """
    streams = max(1, min(EVAL_STREAMS, (len(ids) - 1) // EVAL_MIN_STREAM))
    inputs, targets = stream_layout(ids, streams)
    total, correct, count, state = 0.0, 0, 0, None
    for start in range(0, inputs.shape[1], EVAL_CHUNK):
        x, y = inputs[:, start:start + EVAL_CHUNK], targets[:, start:start + EVAL_CHUNK]
        logits, state = step(np.ascontiguousarray(x), state)
        log_p = log_softmax(logits)  # (N, T, V)
        known = y != UNK_ID
        picked = np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]
        total -= float(picked[known].sum())
        correct += int((log_p.argmax(-1) == y)[known].sum())
        count += int(known.sum())
    if count == 0:
        raise InputError("the text holds no character the model knows, so there is nothing to score")
    loss = total / count
    return {"loss": loss, "bpc": loss / LN2, "accuracy": correct / count, "chars": count,
            "unknown": int(np.sum(targets == UNK_ID))}


# --------------------------------------------------------------------------- sampling


def check_generation(vocab: CharVocab, prime: str, length: int, temperature: float, top_k: int | None,
                     seed: int | None) -> None:
    """Raise InputError naming the fix for any unusable generation option."""
    if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= MAX_LENGTH:
        raise InputError(f"length must be a whole number of characters in 1..{MAX_LENGTH}; got {length!r}")
    if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
            or not math.isfinite(temperature) or temperature <= 0):
        raise InputError(f"temperature must be a finite number > 0 (about 0.5-1.0 is usual; lower is more "
                         f"conservative); got {temperature!r}")
    chars = len(vocab) - 1
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= chars):
        raise InputError(f"top-k must be a whole number in 1..{chars} (the model knows {chars} characters), "
                         f"or left out; got {top_k!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise InputError(f"seed must be a whole number >= 0; got {seed!r}")
    check_prime(vocab, prime)


def check_prime(vocab: CharVocab, prime: str) -> None:
    if not isinstance(prime, str):
        raise InputError(f"the prime must be text; got {type(prime).__name__}")
    if len(prime) > MAX_PRIME_CHARS:
        raise InputError(f"the prime has {len(prime)} characters; at most {MAX_PRIME_CHARS} are read")
    if any("\ud800" <= c <= "\udfff" for c in prime):
        raise InputError("the prime is not valid Unicode text (it holds a lone surrogate); re-encode it as UTF-8")
    unknown = vocab.unknown_characters(prime)
    if unknown:
        raise InputError(f"the prime has {len(unknown)} character(s) the model never saw in training: "
                         f"{describe_characters(unknown[:10])}{' ...' if len(unknown) > 10 else ''}; "
                         f"remove or replace them (the model knows {len(vocab) - 1} characters: "
                         f"{''.join(vocab.tokens[1:])!r})")


def start_ids(vocab: CharVocab, prime: str) -> np.ndarray:
    """ids (T,) the model reads before sampling: the prime, or for an empty prime a newline
    (the most frequent character when the training text had no newline)."""
    if prime:
        return vocab.encode(prime)
    newline = vocab.encode("\n")
    return newline if newline[0] != UNK_ID else np.array([int(np.argmax(vocab.counts))], dtype=np.int64)


def pick_next(logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> int:
    """One id from logits (V,): softmax(logits / temperature) over the top_k largest, <unk> excluded.

    Drawn by inverse CDF with a single `rng.random()`, in float64, so the same
    logits and Generator give the same id on any engine.
    """
    z = logits.astype(np.float64) / temperature
    z[UNK_ID] = -np.inf
    if top_k is not None and top_k < len(z) - 1:
        kth = np.partition(z, len(z) - top_k)[len(z) - top_k]
        z[z < kth] = -np.inf
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    index = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return min(index, len(z) - 1)


def sample_ids(step: StepFn, ids: np.ndarray, length: int, temperature: float, top_k: int | None,
               rng: np.random.Generator) -> Iterator[int]:
    """Read ids (T,) then yield `length` sampled ids, one at a time, each fed back as the next input."""
    state, logits = None, None
    for start in range(0, len(ids), PRIME_CHUNK):  # bounded memory for long primes
        logits, state = step(ids[None, start:start + PRIME_CHUNK], state)
    last = logits[0, -1]
    for produced in range(length):
        choice = pick_next(last, temperature, top_k, rng)
        yield choice
        if produced + 1 < length:
            logits, state = step(np.array([[choice]], dtype=np.int64), state)
            last = logits[0, -1]


# --------------------------------------------------------------------------- engines


def numpy_step(model) -> StepFn:
    """A StepFn over a numpy_engine ManyToMany model (inference: no dropout)."""
    def step(ids: np.ndarray, state):
        logits, final = model.forward(ids, state, train=False)
        return logits, final

    return step


def torch_step(module) -> StepFn:
    """A StepFn over a torch ManyToMany module (put it in eval mode first); the state stays torch."""
    import torch

    def step(ids: np.ndarray, state):
        with torch.no_grad():
            logits, final = module(torch.from_numpy(np.ascontiguousarray(ids)), state)
        return logits.float().cpu().numpy(), final

    return step


def bundle_step(bundle: Bundle, engine: str) -> StepFn:
    """The StepFn of a bundle's model on `engine` ("numpy": no torch import; or "torch")."""
    if engine == "numpy":
        from rnnkit.numpy_engine import build_model

        return numpy_step(build_model(bundle.config, bundle.tensors))
    if engine == "torch":
        from rnnkit.tasks.engines import import_torch

        import_torch()
        from rnnkit.torch_engine import build_model, load_tensors

        return torch_step(load_tensors(build_model(bundle.config), bundle.tensors).eval())
    raise InputError(f"unknown engine {engine!r}; use numpy or torch")


# --------------------------------------------------------------------------- the predictor


class CharLM:
    """A trained character-LM bundle, ready to generate and score text.

        model = rnnkit.load("runs/shakespeare")              # numpy engine
        for piece in model.stream("ROMEO:", 200, temperature=0.8, seed=1):
            print(piece, end="", flush=True)
        model.generate("ROMEO:", 200, temperature=0.8, seed=1)  # the same text, as one string
        model.evaluate(open("other.txt").read())               # {"loss": nats/char, "bpc": ..., ...}

    Attributes:
        bundle: the loaded bundle; engine: "numpy" or "torch"; vocab: its CharVocab.
    """

    def __init__(self, bundle: Bundle, engine: str = "numpy") -> None:
        if bundle.config.architecture != "many_to_many" or bundle.config.output_size != bundle.config.vocab_size:
            raise InputError(f"{bundle.path} is not a character LM (a many_to_many model predicting its own "
                             "vocabulary)")
        self.bundle, self.engine = bundle, engine
        self.vocab = CharVocab.from_json(bundle.vocab)
        self._step = bundle_step(bundle, engine)

    def stream(self, prime: str = "", length: int = 500, temperature: float = 1.0, top_k: int | None = None,
               seed: int | None = None) -> Iterator[str]:
        """Yield the generated continuation of `prime` one character at a time (the prime is not repeated).

        Options are checked before anything runs (InputError). seed=None draws fresh randomness.
        """
        check_generation(self.vocab, prime, length, temperature, top_k, seed)
        rng = np.random.default_rng(seed)
        ids = sample_ids(self._step, start_ids(self.vocab, prime), length, float(temperature), top_k, rng)
        tokens = self.vocab.tokens
        return (tokens[i] for i in ids)

    def generate(self, prime: str = "", length: int = 500, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None) -> str:
        """The continuation of `prime` (without the prime), as one string; see `stream`."""
        return "".join(self.stream(prime, length, temperature, top_k, seed))

    def predict(self, texts, *args, **kwargs):
        """A character LM has no labels to predict: InputError pointing at generate/evaluate."""
        raise InputError(f"{self.bundle.path} is a character language model; it generates text "
                         "(rnnkit generate BUNDLE --prime ...) and scores text (rnnkit evaluate BUNDLE --text FILE)")

    translate = predict

    def evaluate(self, text: str) -> dict:
        """loss (nats/char), bpc, accuracy, chars scored and unknown characters of `text`."""
        if not isinstance(text, str) or len(text) < 2:
            raise InputError("give a text of at least 2 characters to evaluate")
        started = time.perf_counter()
        metrics = score_ids(self._step, self.vocab.encode(text))
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        return metrics


# --------------------------------------------------------------------------- training


class CarriedState:
    """The hidden state carried from chunk to chunk during training (None at an epoch's start).

    `get`/`set` move it as numpy arrays ("h", and "c" for lstm), so it can be
    saved with a checkpoint and restored on resume.
    """

    def __init__(self) -> None:
        self.value = None

    def get(self) -> dict[str, np.ndarray]:
        if self.value is None:
            return {}
        parts = self.value if isinstance(self.value, tuple) else (self.value,)
        return {name: np.asarray(_to_numpy(part)) for name, part in zip(("h", "c"), parts)}

    def set(self, arrays: dict[str, np.ndarray]) -> None:
        self.value = None if not arrays else (arrays["h"], arrays["c"]) if "c" in arrays else arrays["h"]


def _to_numpy(value):
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


@dataclass
class EngineRun:
    """What training needs from an engine.

    Attributes:
        model: the torch nn.Module or numpy_engine model the Trainer updates.
        step: the Trainer's step function (torch: (model, chunk); numpy: (model, chunk, rng)).
        logits: model -> StepFn for validation and samples (inference, no dropout).
        tensors: model -> weights under the bundle's names (float32 numpy copies).
        precision: "fp32" or "bf16" (the training forward pass).
    """

    model: object
    step: Callable
    logits: Callable[[object], StepFn]
    tensors: Callable[[object], dict]
    precision: str


def train(text: str, model_config: ModelConfig, train_config: TrainConfig, settings: CharLMSettings,
          out_dir: str | Path, progress: bool = True, resume: bool = False, engine: str = "torch") -> dict:
    """Train a character LM on `text` with `engine` ("torch" or "numpy"); the best model is saved to `out_dir`.

    The vocabulary comes from the first (1 - validation_fraction) of the text,
    the rest validates. `model_config.vocab_size`/`output_size` are set from
    the vocabulary. Returns the best validation metrics (loss in nats/char, bpc, accuracy).
    """
    from rnnkit.training import Trainer, distributed, seed_everything

    if engine not in ("torch", "numpy"):
        raise ConfigError(f"engine must be torch or numpy; got {engine!r}")
    if engine == "torch":
        from rnnkit.tasks.engines import import_torch

        import_torch()  # before seeding, so torch is seeded too
    progress = progress and distributed.setup(engine, train_config.device).is_main  # torchrun: rank 0 prints
    vocab, train_ids, val_ids = prepare_text(text, train_config.validation_fraction, settings,
                                             train_config.batch_size)
    model_config = lm_config(model_config, len(vocab))
    rng = seed_everything(train_config.seed)
    carried = CarriedState()
    show = _sampler(vocab, progress)
    build = _torch_run if engine == "torch" else _numpy_run
    run = build(model_config, train_config, settings, carried, show)
    saved_settings = {**asdict(settings), "precision": run.precision, "engine": engine,
                      "train_chars": int(len(train_ids)), "val_chars": int(len(val_ids))}

    def validate(model) -> dict:
        metrics = score_ids(run.logits(model), val_ids)
        show(run.logits(model), "epoch end")
        return {k: metrics[k] for k in ("loss", "bpc", "accuracy")}

    def save(model, metrics: dict) -> None:
        save_bundle(out_dir, "charlm", model_config, vocab.to_json(), run.tensors(model),
                    settings=saved_settings, train=train_config.to_dict(),
                    metrics={f"val_{k}": v for k, v in metrics.items()})

    def batches(epoch: int, rng: np.random.Generator):
        return epoch_chunks(train_ids, train_config.batch_size, settings.seq_len, rng)

    if progress:
        chunks = (len(train_ids) - 1) // train_config.batch_size // settings.seq_len
        print(f"training on {len(train_ids):,} characters ({train_config.batch_size} streams x "
              f"{settings.seq_len} steps, ~{chunks} chunks per epoch), validating on {len(val_ids):,}; "
              f"{len(vocab) - 1} distinct characters; model: {describe(model_config)}; {engine} engine, "
              f"{run.precision}; first loss should be about ln V = {math.log(len(vocab)):.2f}", file=sys.stderr)
    trainer = Trainer(run.model, train_config, out_dir, save, progress=progress, carry=carried)
    trainer.fit(batches, run.step, validate, rng, resume=resume)
    return trainer.best_metrics()


def _torch_run(config: ModelConfig, train_config: TrainConfig, settings: CharLMSettings, carried: "CarriedState",
               show: Callable) -> EngineRun:
    """The torch model and its step: forward (bf16 autocast when asked), carried state, cross-entropy."""
    import torch
    import torch.nn.functional as F

    from rnnkit.torch_engine import build_model, export_tensors

    torch.set_num_threads(train_config.threads or torch.get_num_threads())
    device = torch.device(train_config.device)
    model = build_model(config).to(device)
    precision = resolve_precision(settings.precision, device.type)
    steps = [0]

    def step(model, chunk):
        # 1. start from the state the previous chunk of these streams ended in (zeros at an epoch's start)
        state = None if chunk.first else _to_device(carried.value, torch, device)
        x, y = torch.from_numpy(chunk.inputs).to(device), torch.from_numpy(chunk.targets).to(device)
        with autocast(torch, device.type, precision):
            logits, final = model(x, state)
        logits = logits.float()
        # 2. truncated BPTT: keep the values of the final state, not its graph
        carried.value = _detached(final)
        # 3. the loss: every step predicts the next character (the Trainer runs backward and the update)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        correct = (logits.argmax(-1) == y).sum().item()
        steps[0] += 1
        if settings.sample_every and steps[0] % settings.sample_every == 0:
            _sample_in_training(getattr(model, "module", model), show, f"step {steps[0]}")  # not the DDP wrapper
        return loss, y.numel(), {"accuracy": correct}

    return EngineRun(model, step, torch_step, export_tensors, precision)


def _numpy_run(config: ModelConfig, train_config: TrainConfig, settings: CharLMSettings, carried: "CarriedState",
               show: Callable) -> EngineRun:
    """The numpy model and its step: forward, carried state, cross-entropy, hand-written BPTT."""
    from rnnkit.numpy_engine import build_model
    from rnnkit.numpy_engine.losses import cross_entropy_with_logits

    if train_config.device != "cpu":
        raise ConfigError("the numpy engine runs on the CPU; leave out --device or use --engine torch")
    if settings.precision == "bf16":
        raise ConfigError("--precision bf16 is for the torch engine; the numpy engine trains in float32")
    model = build_model(config, rng=np.random.default_rng(train_config.seed))
    steps = [0]

    def step(model, chunk, rng):
        # 1. forward from the carried state (zeros at an epoch's start); dropout drawn from rng
        state = None if chunk.first else carried.value
        logits, final = model.forward(chunk.inputs, state, train=True, rng=rng)  # (N, T, V)
        # 2. truncated BPTT: the final state's values go on, no gradient flows into the next chunk
        carried.value = final
        # 3. loss and its gradient, then backward through time within the chunk
        loss, dlogits = cross_entropy_with_logits(logits, chunk.targets)
        grads = model.backward(dlogits)
        correct = int((logits.argmax(-1) == chunk.targets).sum())
        steps[0] += 1
        if settings.sample_every and steps[0] % settings.sample_every == 0:
            grads = {name: g.copy() for name, g in grads.items()}  # the sample's forward reuses the buffers
            show(numpy_step(model), f"step {steps[0]}")
        return loss, chunk.targets.size, {"accuracy": correct}, grads

    def tensors(model) -> dict:
        return {name: np.array(value, dtype=np.float32) for name, value in model.params.items()}

    return EngineRun(model, step, numpy_step, tensors, "fp32")


def resolve_precision(precision: str, device_type: str) -> str:
    """"auto" -> "bf16" on a CPU with AMX-BF16 (Linux /proc/cpuinfo flag amx_bf16), else "fp32"."""
    if precision != "auto":
        return precision
    if device_type != "cpu":
        return "fp32"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    return "bf16" if " amx_bf16" in flags else "fp32"


def autocast(torch, device_type: str, precision: str):
    """torch.autocast to bfloat16 for "bf16" (matrix products and the recurrent kernels), else nothing."""
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def lm_config(config: ModelConfig, vocab_size: int) -> ModelConfig:
    """`config` as a character LM over `vocab_size` ids: many_to_many, predicting its own vocabulary."""
    if config.bidirectional:
        raise ConfigError("a language model reads left to right; it cannot be bidirectional")
    fields = {**config.to_dict(), "vocab_size": vocab_size, "output_size": vocab_size,
              "architecture": "many_to_many", "padding_idx": UNK_ID}
    return ModelConfig(**fields)


def describe(c: ModelConfig) -> str:
    layers = " -> ".join([f"{c.cell.upper()}({c.hidden_size})"] * c.num_layers)
    return f"Embedding({c.vocab_size}, {c.embedding_dim}) -> {layers} -> Dense({c.output_size}), dropout {c.dropout}"


def _detached(state):
    """A float32 copy of a state (h, or (h, c)) without its graph: truncated BPTT stops here."""
    if isinstance(state, tuple):
        return tuple(s.detach().float() for s in state)
    return state.detach().float()


def _to_device(state, torch, device):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(torch.as_tensor(s).to(device) for s in state)
    return torch.as_tensor(state).to(device)


def _sampler(vocab: CharVocab, progress: bool) -> Callable[[StepFn, str], None]:
    """A function that prints a short sample (temperature 0.8, fixed seed) to stderr, when `progress`."""
    def show(step: StepFn, when: str) -> None:
        if not progress:
            return
        from tqdm import tqdm

        ids = sample_ids(step, start_ids(vocab, ""), SAMPLE_CHARS, 0.8, None, np.random.default_rng(0))
        tqdm.write(f"--- sample ({when}) ---\n{vocab.decode(ids)}\n---", file=sys.stderr)

    return show


def _sample_in_training(model, show, when: str) -> None:
    """Sample in eval mode (no dropout, no grad) in the middle of a training step, then back to train mode."""
    model.eval()
    try:
        show(torch_step(model), when)
    finally:
        model.train()


# --------------------------------------------------------------------------- command line


# The default model: sized for a 2-core CPU (see bench/charlm.py and bench/results/charlm.json).
# A tuning run (bench/results/charlm.json) reached 1.4461 nats/char on tiny-shakespeare in 30 minutes with it,
# on one thread of a busy machine; dropout 0.25 with lr 2e-3 / decay 0.95 had a wider train/validation gap.
DEFAULTS = {"cell": "lstm", "layers": 2, "hidden": 512, "embedding_dim": 64, "dropout": 0.4, "seq_len": 128,
            "batch_size": 32, "lr": 3e-3, "lr_decay": 0.92, "epochs": 30, "patience": 4}


def register(commands, train_tasks) -> None:
    """Add `rnnkit train charlm` and `rnnkit generate` to the CLI (`rnnkit evaluate` reads charlm bundles too)."""
    _add_train_command(train_tasks)
    _add_generate_command(commands)


def _add_train_command(train_tasks) -> None:
    from rnnkit.cli import add_train_arguments

    cmd = train_tasks.add_parser(
        "charlm", help="character-level language model on any UTF-8 text file",
        description="Train embedding -> stacked rnn|lstm|gru -> dense on the characters of a text (first 90% "
                    "trains, last 10% validates; truncated BPTT with the state carried between chunks). "
                    "The learning rate is multiplied by --lr-decay after each epoch (default here 0.92).")
    cmd.add_argument("--text", required=True, help="UTF-8 text file, e.g. ../shared/data/tinyshakespeare.txt")
    cmd.add_argument("--out", required=True, help="bundle directory")
    cmd.add_argument("--seq-len", type=int, default=DEFAULTS["seq_len"],
                     help="characters per chunk of truncated BPTT (default %(default)s)")
    cmd.add_argument("--precision", choices=PRECISIONS, default="auto",
                     help="training forward pass: auto = bf16 on CPUs with AMX-BF16 (about 2.4x faster), "
                          "else fp32; weights stay float32 (default %(default)s)")
    cmd.add_argument("--sample-every", type=int, default=500,
                     help="print a short sample every N steps, besides each epoch end; 0 = epoch ends only "
                          "(default %(default)s)")
    model = cmd.add_argument_group("model")
    model.add_argument("--cell", choices=("rnn", "lstm", "gru"), default=DEFAULTS["cell"],
                       help="(default %(default)s)")
    model.add_argument("--layers", type=int, default=DEFAULTS["layers"],
                       help="1..3 stacked layers (default %(default)s)")
    model.add_argument("--hidden", type=int, default=DEFAULTS["hidden"], help="hidden units (default %(default)s)")
    model.add_argument("--embedding-dim", type=int, default=DEFAULTS["embedding_dim"], help="(default %(default)s)")
    model.add_argument("--dropout", type=float, default=DEFAULTS["dropout"],
                       help="on embeddings, between layers and before the head (default %(default)s)")
    add_train_arguments(cmd, epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"], lr=DEFAULTS["lr"],
                        clip_norm=5.0, patience=DEFAULTS["patience"])
    cmd.set_defaults(func=cmd_train_charlm, lr_decay=DEFAULTS["lr_decay"])


def _add_generate_command(commands) -> None:
    gen = commands.add_parser("generate", help="write text with a character-LM bundle (streams to stdout)")
    gen.add_argument("bundle", help="bundle directory written by rnnkit train charlm")
    gen.add_argument("--prime", default="",
                     help="text the model reads first; printed, then continued (default: none)")
    gen.add_argument("--length", type=int, default=500,
                     help=f"characters to generate, 1..{MAX_LENGTH} (default %(default)s)")
    gen.add_argument("--temperature", type=float, default=0.8,
                     help="> 0; lower is safer and more repetitive, higher more varied (default %(default)s)")
    gen.add_argument("--top-k", type=int, help="sample only among the k most likely characters (default: all)")
    gen.add_argument("--seed", type=int, help="same seed, same text, on either engine (default: random, printed)")
    gen.add_argument("--engine", choices=("numpy", "torch"), default="numpy", help="numpy needs no torch (default)")
    gen.set_defaults(func=cmd_generate)



def cmd_train_charlm(args) -> int:
    from rnnkit.cli import _check_output_dir, train_config_from
    from rnnkit.data.text import read_text

    out = _check_output_dir(args.out)
    if not 1 <= args.layers <= 3:
        raise ConfigError(f"--layers must be 1, 2 or 3; got {args.layers}")
    settings = CharLMSettings(seq_len=args.seq_len, sample_every=args.sample_every, text=str(args.text),
                              precision=args.precision)
    train_config = train_config_from(args)  # validate every option before reading the text
    model_config = ModelConfig(vocab_size=1, output_size=1, cell=args.cell, num_layers=args.layers,
                               hidden_size=args.hidden, embedding_dim=args.embedding_dim, dropout=args.dropout,
                               architecture="many_to_many")
    text = read_text(args.text)
    if args.deterministic and args.engine == "torch":
        import torch

        torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    best = train(text, model_config, train_config, settings, out, progress=not args.quiet, resume=args.resume,
                 engine=args.engine)
    minutes = (time.perf_counter() - started) / 60
    print(f"best validation loss {best['loss']:.4f} nats/char ({best['bpc']:.4f} bits/char), next-character "
          f"accuracy {best['accuracy']:.4f} ({minutes:.1f} min); bundle saved to {out}")
    print(f'next: rnnkit generate {out} --prime "..." --length 500 --temperature 0.8')
    return 0


def cmd_generate(args) -> int:
    import secrets

    from rnnkit.cli import _checked_utf8
    from rnnkit.tasks import load_predictor

    model = load_predictor(args.bundle, engine=args.engine)
    if not isinstance(model, CharLM):
        raise InputError(f"{args.bundle} holds a {model.bundle.task!r} model; generate needs a charlm bundle "
                         "(rnnkit train charlm)")
    prime = _checked_utf8(args.prime, "the --prime text")
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    pieces = model.stream(prime, args.length, args.temperature, args.top_k, seed)  # checks every option first
    if args.seed is None:
        print(f"rnnkit: seed {seed} (pass --seed {seed} to get this text again)", file=sys.stderr)
    out = sys.stdout
    out.write(prime)
    with one_thread():
        for piece in pieces:
            out.write(piece)
            out.flush()
    out.write("\n")
    return 0


@contextlib.contextmanager
def one_thread():
    """One BLAS thread (threadpoolctl, when installed) and one torch thread (when torch is loaded).

    Generation runs one character at a time (batch 1): the products are too small to
    share, and on a busy 2-core machine a second BLAS thread made numpy generation
    about 40x slower (bench/charlm.py measures chars/s this way).
    """
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(1)
    try:
        with limits:
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(previous)


def cmd_evaluate_charlm(model: "CharLM", args) -> int:
    """`rnnkit evaluate BUNDLE [--text FILE]` for charlm bundles (default: the training text's validation part)."""
    import json

    from rnnkit.data.text import read_text

    if args.text:
        name, text = args.text, read_text(args.text)
    else:
        source = model.bundle.settings.get("text")
        if not source or not Path(source).is_file():
            raise InputError("give the text to score with --text FILE (the bundle's training text "
                             f"{source!r} is not there to take the validation part from)")
        fraction = float(model.bundle.train.get("validation_fraction", 0.1))
        name, text = f"{source} (validation part)", split_text(read_text(source), fraction)[1]
    metrics = model.evaluate(text)
    metrics.update({"text": name, "engine": model.engine, "bundle": str(args.bundle)})
    if args.json:
        print(json.dumps(metrics, ensure_ascii=False))
        return 0
    print(f"{name}: {metrics['chars']:,} characters scored   loss {metrics['loss']:.4f} nats/char   "
          f"{metrics['bpc']:.4f} bits/char   next-character accuracy {metrics['accuracy']:.4f}")
    if metrics["unknown"]:
        print(f"rnnkit: note: {metrics['unknown']} characters of the text are not in the model's vocabulary; "
              "they were read as <unk> and not scored", file=sys.stderr)
    return 0

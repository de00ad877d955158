"""What the language-model tasks share (the character LM `charlm` and the word LM `wordlm`).

Key: N batch (parallel streams), T time steps, V vocabulary.

    StepFn, numpy_step, torch_step, bundle_step   a bundle's model on either engine: (ids, state) -> (logits, state)
    CarriedState                                  the hidden state carried between chunks (truncated BPTT),
                                                  saved in checkpoints so a run resumes mid-epoch
    epoch_chunks                                  one epoch of (N, T) chunks with a random start offset
    score_chunks                                  a text as up to 16 long streams read in pieces, state carried
    pick_next, sample_ids, one_thread             temperature / top-k sampling, the same on either engine
    check_sampling                                the numeric generation options, one clear error each
    resolve_precision, autocast                   bf16 autocast on CPUs with AMX-BF16 or AVX512-BF16
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from rnnkit.bundle import Bundle
from rnnkit.data.text import chunk_batches, stream_layout
from rnnkit.errors import InputError

# A step function runs the model on a chunk: (ids (N, T) int64, state or None) -> (logits (N, T, V), state).
# The state is engine-specific and opaque to the callers.
StepFn = Callable[[np.ndarray, object], tuple[np.ndarray, object]]

PRECISIONS = ("auto", "fp32", "bf16")

MAX_LENGTH = 100_000       # most tokens one generate call may produce


MAX_PRIME_CHARS = 100_000  # longest prime (read in PRIME_CHUNK pieces, so memory stays bounded)


PRIME_CHUNK = 256


# --------------------------------------------------------------------------- the model behind one function


def numpy_step(model) -> StepFn:
    """A StepFn over a numpy_engine ManyToMany model (inference: no dropout).

    Safe to call from several threads: the model's layers write into buffers they keep between calls
    (`numpy_engine.recurrent.Workspace`), so one call runs at a time; what it returns (new logits and a
    stacked copy of the state) is the caller's own. Without the lock, two generations with the same
    seed in two threads gave different text.
    """
    lock = threading.Lock()

    def step(ids: np.ndarray, state):
        with lock:
            logits, final = model.forward(ids, state, train=False)
        return logits, final

    return step


def torch_step(module) -> StepFn:
    """A StepFn over a torch ManyToMany module (put it in eval mode first), on the module's device; the state
    stays torch."""
    import torch

    device = next(module.parameters()).device

    def step(ids: np.ndarray, state):
        with torch.no_grad():
            logits, final = module(torch.from_numpy(np.ascontiguousarray(ids)).to(device), state)
        return logits.float().cpu().numpy(), final

    return step


def bundle_model(bundle: Bundle, engine: str):
    """The bundle's model on `engine`: a numpy_engine model ("numpy": no torch import), or a torch module in
    eval mode ("torch")."""
    if engine == "numpy":
        from rnnkit.numpy_engine import build_model

        return build_model(bundle.config, bundle.tensors)
    if engine == "torch":
        from rnnkit.optional import import_torch

        import_torch()
        from rnnkit.torch_engine import build_model, load_tensors

        return load_tensors(build_model(bundle.config), bundle.tensors).eval()
    raise InputError(f"unknown engine {engine!r}; use numpy or torch")


def bundle_step(bundle: Bundle, engine: str) -> StepFn:
    """The StepFn of a bundle's model on `engine` ("numpy": no torch import; or "torch")."""
    model = bundle_model(bundle, engine)
    return numpy_step(model) if engine == "numpy" else torch_step(model)


# --------------------------------------------------------------------------- training chunks and carried state


def epoch_chunks(train_ids: np.ndarray, batch_size: int, seq_len: int, rng: np.random.Generator,
                 copy: bool = True) -> list:
    """One epoch of chunks; a random start offset in [0, T) moves the chunk boundaries each epoch.

    `copy=False`: the chunks are views of `train_ids` (see `data.text.chunk_batches`)."""
    room = (len(train_ids) - 1) // batch_size - seq_len  # offset that still leaves one full chunk per stream
    offset = int(rng.integers(0, min(seq_len, room) + 1)) if room > 0 else 0
    return chunk_batches(train_ids, batch_size, seq_len, offset, copy)


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


def detached(state):
    """A float32 copy of a state (h, or (h, c)) without its graph: truncated BPTT stops here."""
    if isinstance(state, tuple):
        return tuple(s.detach().float() for s in state)
    return state.detach().float()


def to_device(state, torch, device):
    """A carried state (numpy after a resume, or torch) as tensors on `device`; None stays None."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(torch.as_tensor(s).to(device) for s in state)
    return torch.as_tensor(state).to(device)


# --------------------------------------------------------------------------- scoring a text


EVAL_STREAMS = 16          # parallel streams when scoring a text


EVAL_MIN_STREAM = 1000     # ... each at least this long, so few tokens start from a cold state


def score_chunks(ids: np.ndarray, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """ids (M,) as up to EVAL_STREAMS side-by-side streams of at least EVAL_MIN_STREAM ids (fewer when the
    text is short), read in pieces of `chunk` steps: (inputs, targets) (N, <= chunk), each piece continuing
    the one before in every row (carry the state through them)."""
    streams = max(1, min(EVAL_STREAMS, (len(ids) - 1) // EVAL_MIN_STREAM))
    inputs, targets = stream_layout(ids, streams)
    for start in range(0, inputs.shape[1], chunk):
        yield (np.ascontiguousarray(inputs[:, start:start + chunk]),
               np.ascontiguousarray(targets[:, start:start + chunk]))


# --------------------------------------------------------------------------- sampling


def check_prime_text(prime) -> None:
    """InputError naming the fix for a prime that is not text, is longer than MAX_PRIME_CHARS, or holds a lone
    surrogate (both language models read primes the same way)."""
    if not isinstance(prime, str):
        raise InputError(f"the prime must be text; got {type(prime).__name__}")
    if len(prime) > MAX_PRIME_CHARS:
        raise InputError(f"the prime has {len(prime)} characters; at most {MAX_PRIME_CHARS} are read")
    if any("\ud800" <= c <= "\udfff" for c in prime):
        raise InputError("the prime is not valid Unicode text (it holds a lone surrogate); re-encode it as UTF-8")


def check_sampling(length: int, temperature: float, top_k: int | None, seed: int | None, unit: str,
                   choices: int) -> None:
    """InputError naming the fix for a length (in `unit`s), temperature, top-k (of `choices`) or seed that
    cannot be used."""
    if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= MAX_LENGTH:
        raise InputError(f"length must be a whole number of {unit} in 1..{MAX_LENGTH}; got {length!r}")
    if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
            or not math.isfinite(temperature) or temperature <= 0):
        raise InputError(f"temperature must be a finite number > 0 (about 0.5-1.0 is usual; lower is more "
                         f"conservative); got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= choices):
        raise InputError(f"top-k must be a whole number in 1..{choices} (the model knows {choices} {unit}), "
                         f"or left out; got {top_k!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise InputError(f"seed must be a whole number >= 0; got {seed!r}")


def pick_next(logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator,
              excluded: tuple[int, ...] = (0,)) -> int:
    """One id from logits (V,): softmax(logits / temperature) over the top_k largest, the `excluded` ids
    (<unk>, <pad>) never drawn.

    Drawn by inverse CDF with a single `rng.random()`, in float64, so the same
    logits and Generator give the same id on any engine. A temperature so small
    that logits / temperature overflows (1e-310 is subnormal) tends to the argmax:
    the largest logit is then subtracted before dividing, so it stays at 0 and the
    others go to -inf (weight 0) instead of inf - inf = nan.
    """
    never = list(excluded)
    with np.errstate(over="ignore"):
        z = logits.astype(np.float64) / temperature
    z[never] = -np.inf
    if not np.isfinite(z.max()):  # overflowed: +inf (or every z -inf); a nan anywhere makes the max nan too
        shifted = logits.astype(np.float64)
        shifted[never] = -np.inf
        with np.errstate(over="ignore", invalid="ignore"):
            z = (shifted - shifted.max()) / temperature
        z[np.isnan(z)] = -np.inf
    if top_k is not None and top_k < len(z) - len(never):
        kth = np.partition(z, len(z) - top_k)[len(z) - top_k]
        z[z < kth] = -np.inf
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    index = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return min(index, len(z) - 1)


def sample_ids(step: StepFn, ids: np.ndarray, length: int, temperature: float, top_k: int | None,
               rng: np.random.Generator, excluded: tuple[int, ...] = (0,)) -> Iterator[int]:
    """Read ids (T,) then yield `length` sampled ids, one at a time, each fed back as the next input."""
    state, logits = None, None
    for start in range(0, len(ids), PRIME_CHUNK):  # bounded memory for long primes
        logits, state = step(ids[None, start:start + PRIME_CHUNK], state)
    last = logits[0, -1]
    for produced in range(length):
        choice = pick_next(last, temperature, top_k, rng, excluded)
        yield choice
        if produced + 1 < length:
            logits, state = step(np.array([[choice]], dtype=np.int64), state)
            last = logits[0, -1]


@contextlib.contextmanager
def one_thread():
    """One BLAS thread (threadpoolctl, when installed) and one torch thread (when torch is loaded).

    Generation runs one token at a time (batch 1): the products are too small to
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


# --------------------------------------------------------------------------- precision


BF16_FLAGS = (" amx_bf16", " avx512_bf16")  # /proc/cpuinfo flags of CPUs with fast bfloat16 products


def resolve_precision(precision: str, device_type: str) -> str:
    """"auto" -> "bf16" on a CPU with AMX-BF16 or AVX512-BF16 (Linux /proc/cpuinfo flags), else "fp32".

    Measured (bench/results/precision.json, AMD EPYC with AVX512-BF16, no AMX): a training step of the
    character LM's default is 1.60x faster in bf16 on 2 threads, the word LM's 1.10x; without those
    flags bf16 is emulated and slower, so auto stays fp32.
    """
    if precision != "auto":
        return precision
    if device_type != "cpu":
        return "fp32"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    return "bf16" if any(flag in flags for flag in BF16_FLAGS) else "fp32"


def autocast(torch, device_type: str, precision: str):
    """torch.autocast to bfloat16 for "bf16" (matrix products and the recurrent kernels), else nothing."""
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

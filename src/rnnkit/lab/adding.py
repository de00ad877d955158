"""The adding problem: who learns a dependency across T steps (`rnnkit lab adding`).

Key: N examples, T sequence length.

Each step carries two features: a random number in [0, 1] and a marker that is
1 at exactly two steps, one in the first half of the sequence and one in the
second half. The target is the sum of the two marked numbers (Hochreiter &
Schmidhuber 1997; Le, Jaitly & Hinton 2015). The model reads the whole
sequence and answers after the last step, so the first marked number must be
carried for between T/2 and T steps, while everything else is noise.

Always answering 1 (the mean of the target) scores MSE = Var(u1 + u2) = 2/12
= 0.167: that is the baseline, and a model below `LEARNED_MSE` has learned the
task. Each cell is trained at each length with the same seed-derived data and
initialisation; the test set is fixed per length.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from rnnkit.errors import ConfigError
from rnnkit.lab import report
from rnnkit.lab.model import SequenceRegressor, init_parameters, mse
from rnnkit.numpy_engine import blas, optim

BASELINE_MSE = 2.0 / 12.0  # always answering 1: the variance of the sum of two U(0, 1)
LEARNED_MSE = 0.05  # test MSE below this counts as learned (the baseline is 0.167)
CELLS = ("rnn", "lstm", "gru")


def adding_problem(count: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` sequences of `length` steps -> x (N, T, 2) float32 [number, marker], y (N,) float32 target."""
    if length < 2:
        raise ConfigError(f"the adding problem needs sequences of at least 2 steps; got {length}")
    half = length // 2
    x = np.zeros((count, length, 2), np.float32)
    x[:, :, 0] = rng.random((count, length))
    rows = np.arange(count)
    first = rng.integers(0, half, count)  # one marker in [0, T/2), one in [T/2, T)
    second = rng.integers(half, length, count)
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    y = x[rows, first, 0] + x[rows, second, 0]
    return x, y


@dataclass(frozen=True)
class AddingSettings:
    """One `rnnkit lab adding` run: every cell at every length, trained alike.

    lr, clip_norm: Adam's learning rate and clipping by global norm (0: none).
    eval_every: steps between test evaluations (the curve's points).
    stop_at: a run stops early once its test MSE is below this (0: never).
    """

    lengths: tuple[int, ...] = (50, 100, 200)
    cells: tuple[str, ...] = CELLS
    hidden_size: int = 32
    steps: int = 4000
    batch_size: int = 32
    lr: float = 0.01
    clip_norm: float = 1.0
    forget_bias: float = 3.0
    eval_every: int = 50
    test_size: int = 500
    stop_at: float = 0.005
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden_size", "steps", "batch_size", "eval_every", "test_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(self, name)}")
        if any(length < 2 for length in self.lengths):
            raise ConfigError(f"--length: every length must be at least 2; got {list(self.lengths)}")
        unknown = [c for c in self.cells if c not in CELLS]
        if unknown:
            raise ConfigError(f"--cells: unknown cell {unknown[0]!r}; choose from {', '.join(CELLS)}")
        numbers = {"lr": self.lr, "clip-norm": self.clip_norm, "forget-bias": self.forget_bias, "stop-at": self.stop_at}
        for name, value in numbers.items():
            if not math.isfinite(value):
                raise ConfigError(f"--{name} must be a finite number; got {value}")
        if not self.lr > 0 or self.clip_norm < 0 or self.stop_at < 0:
            raise ConfigError(f"--lr must be positive and --clip-norm, --stop-at at least 0; got lr {self.lr}, "
                              f"clip-norm {self.clip_norm}, stop-at {self.stop_at}")


def train(cell: str, length: int, settings: AddingSettings, seed, test=None, recurrent_scale=None,
          clip_norm: float | None = None, optimizer: str = "adam") -> tuple[SequenceRegressor, dict]:
    """Train `cell` on the adding problem of `length` steps -> (model, record).

    record: steps, test_mse, train_mse and grad_norm (lists, one point every eval_every steps from step 0;
    the last two the mean loss and the largest gradient norm, before clipping, since the previous point),
    final_test_mse, learned, seconds. The same `seed` (an int or a SeedSequence) gives the same
    initialisation and batches; `test` (x, y) is the test set (default: drawn from the seed).
    `clip_norm` None means the settings'; `optimizer` "adam" or "sgd" (plain, the setting of Pascanu et al.).
    A run stops at settings.steps, once its test MSE is below settings.stop_at, or when it is no longer finite.
    """
    s = settings
    clip = s.clip_norm if clip_norm is None else clip_norm
    rng = np.random.default_rng(seed)
    model = SequenceRegressor(cell, init_parameters(cell, 2, s.hidden_size, rng, recurrent_scale, s.forget_bias))
    opt = optim.Adam(model.params, lr=s.lr) if optimizer == "adam" else optim.SGD(model.params, lr=s.lr)
    x_test, y_test = test if test is not None else adding_problem(s.test_size, length, rng)
    record = {"cell": cell, "length": length, "steps": [], "test_mse": [], "train_mse": [], "grad_norm": []}
    started, recent, norms = time.perf_counter(), [], []
    for step in range(s.steps + 1):
        if step % s.eval_every == 0 or step == s.steps:  # 1. a point of the curve: the test set, no update
            test_mse = evaluate(model, x_test, y_test)
            record["steps"].append(step)
            record["test_mse"].append(test_mse)
            record["train_mse"].append(float(np.mean(recent)) if recent else None)
            record["grad_norm"].append(max(norms) if norms else None)
            recent, norms = [], []
            if test_mse < s.stop_at or not np.isfinite(test_mse) or step == s.steps:
                break
        x, y = adding_problem(s.batch_size, length, rng)  # 2. a fresh batch: forward, MSE, BPTT
        loss, dy = mse(model.forward(x), y)
        grads = model.backward(dy)
        norms.append(optim.clip_grad_norm(grads, clip or math.inf))  # 3. clip by global norm (0: not), update
        opt.step(grads)
        recent.append(loss)
    record["final_test_mse"] = record["test_mse"][-1]
    record["learned"] = bool(record["final_test_mse"] < LEARNED_MSE)
    record["seconds"] = round(time.perf_counter() - started, 2)
    return model, record


def evaluate(model: SequenceRegressor, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    """Test MSE of `model` on x (N, T, 2), y (N,), in batches."""
    total = 0.0
    for start in range(0, len(x), batch):
        predictions = model.forward(x[start:start + batch])
        total += mse(predictions, y[start:start + batch])[0] * len(predictions)
    return total / len(x)


def run(settings: AddingSettings, progress=None) -> dict:
    """Every cell at every length -> {"settings", "baseline_mse", "learned_mse", "runs": [record, ...]}.

    progress(record), if given, is called after each training.
    """
    runs = []
    with blas.single_threaded():  # the lab's matmuls are small: a second BLAS thread costs more than it saves
        for length in settings.lengths:
            test = adding_problem(settings.test_size, length, np.random.default_rng([settings.seed, length, 1]))
            for cell in settings.cells:  # each cell's seed is its own: the same run whichever cells are listed
                seed = np.random.SeedSequence([settings.seed, length, 2, CELLS.index(cell)])
                _, record = train(cell, length, settings, seed, test)
                runs.append(record)
                if progress:
                    progress(record)
    return {"experiment": "adding", "settings": asdict(settings), "baseline_mse": BASELINE_MSE,
            "learned_mse": LEARNED_MSE, "runs": runs}


def table(result: dict) -> str:
    """Final test MSE per cell (rows) and length (columns); * marks learned (MSE < LEARNED_MSE)."""
    runs, lengths = result["runs"], result["settings"]["lengths"]
    cells = list(dict.fromkeys(r["cell"] for r in runs))
    final = {(r["cell"], r["length"]): r for r in runs}
    lines = [f"test MSE after training, and the steps it took (baseline, always answering 1: {BASELINE_MSE:.3f}; "
             f"* learned: below {LEARNED_MSE})",
             f"{'cell':<6}" + "".join(f"{f'T={n}':>18}" for n in lengths)]
    for cell in cells:
        row = f"{cell:<6}"
        for n in lengths:
            r = final[cell, n]
            row += f"{r['final_test_mse']:.4f}{'*' if r['learned'] else ' '} @{r['steps'][-1]:<5}".rjust(18)
        lines.append(row.rstrip())
    return "\n".join(lines)


def plot(result: dict, target) -> None:
    """Test MSE against training step, one panel per length, one line per cell; the baseline dashed."""
    lengths = result["settings"]["lengths"]
    fig, axes = report.figure(1, len(lengths), width=4.2 * len(lengths), height=3.6)
    for ax, length in zip(axes, lengths):
        for r in (r for r in result["runs"] if r["length"] == length):
            ax.plot(r["steps"], r["test_mse"], label=r["cell"], color=report.COLORS[r["cell"]])
        ax.axhline(BASELINE_MSE, color="gray", linestyle="--", linewidth=1, label="always 1")
        ax.axhline(LEARNED_MSE, color="gray", linestyle=":", linewidth=1, label="learned")
        ax.set_yscale("log")
        ax.set_title(f"adding problem, T = {length}")
        ax.set_xlabel("training step")
        ax.set_ylabel("test MSE")
        ax.grid(alpha=0.3)
    axes[0].legend()
    report.save_png(fig, target)

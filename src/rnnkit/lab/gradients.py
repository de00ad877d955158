"""Gradients through time: how much of the loss's gradient reaches a state d steps back (`rnnkit lab gradients`).

Key: N batch, T time, H hidden size, d = T - t the distance from the last state.

The model (`rnnkit.lab.model`) reads an adding-problem sequence and answers
from its last state h_T, so the loss L reaches h_t only through the d steps
between them. By the chain rule,

    dL/dh_t = dL/dh_T  J_T J_{T-1} ... J_{t+1},    J_k = dh_k / dh_{k-1}

and for the vanilla RNN J_k = diag(1 - h_k^2) W_hh: a product of d matrices,
which shrinks geometrically when their norms are below 1 (vanishing) and
can grow geometrically when W_hh is large (exploding; Bengio, Simard &
Frasconi 1994; Pascanu, Mikolov & Bengio 2013). The numpy engine's BPTT
computes exactly these vectors on its way back (`Recurrent.backward(...,
dh_steps=)`); this module takes their norms, ||dL/dh_t|| over the batch,
for each cell:

    at initialisation   torch's init (and the LSTM's forget-gate bias)
    after training      on the adding problem of the same length
    exploding           a vanilla RNN with W_hh = s Q (every singular value s)
    clipping            that RNN trained with plain SGD, with and without
                        clipping by global norm: the test MSE by step

Norms are taken in float64 (a vanishing gradient of 1e-60 would be 0 in float32)
and shown relative to distance 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from rnnkit.errors import ConfigError
from rnnkit.lab import report
from rnnkit.lab.adding import BASELINE_MSE, CELLS, AddingSettings, adding_problem, train
from rnnkit.lab.model import SequenceRegressor, init_parameters, mse
from rnnkit.numpy_engine import blas

SCALES = (0.5, 1.0)  # the RNN's recurrent scales always drawn beside --recurrent-scale


def gradient_norms(model: SequenceRegressor, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """||dL/dh_t|| by distance: norms[d] for the state d steps before the last (d = 0 .. T-1), in float64.

    x (N, T, D), y (N,); L is the batch's MSE; the norm is taken over the whole (N, H) gradient.
    """
    model = SequenceRegressor(model.cell, {k: v.astype(np.float64) for k, v in model.params.items()})
    N, T = x.shape[:2]
    _, dy = mse(model.forward(x), y)
    dh = np.zeros((T, N, model.hidden_size))
    model.backward(dy, dh_steps=dh)
    return np.sqrt(np.einsum("tnh,tnh->t", dh, dh))[::-1].copy()


@dataclass(frozen=True)
class GradientSettings:
    """One `rnnkit lab gradients` run.

    length: T of the adding problem the gradients are measured on (and trained on).
    train_steps: the longest training before the "after training" measurement (it stops once learned).
    recurrent_scale: s of the exploding RNN (W_hh = s Q).
    sgd_lr, clip_norm, clip_steps: the clipping comparison (plain SGD, with and without clipping).
    """

    length: int = 200
    hidden_size: int = 32
    batch_size: int = 64
    train_steps: int = 3000
    lr: float = 0.01
    forget_bias: float = 3.0
    recurrent_scale: float = 2.0
    sgd_lr: float = 0.05
    clip_norm: float = 1.0
    clip_steps: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        if self.length < 3:
            raise ConfigError(f"--length must be at least 3 (distances 1 and more); got {self.length}")
        for name in ("hidden_size", "batch_size", "clip_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(self, name)}")
        if self.train_steps < 0:
            raise ConfigError(f"--train-steps must be at least 0; got {self.train_steps}")
        numbers = {"lr": self.lr, "sgd-lr": self.sgd_lr, "clip-norm": self.clip_norm,
                   "recurrent-scale": self.recurrent_scale, "forget-bias": self.forget_bias}
        for name, value in numbers.items():
            if not math.isfinite(value):
                raise ConfigError(f"--{name} must be a finite number; got {value}")
        if not (self.lr > 0 and self.sgd_lr > 0 and self.clip_norm > 0 and self.recurrent_scale > 0):
            raise ConfigError("--lr, --sgd-lr, --clip-norm and --recurrent-scale must be positive; got "
                              f"{self.lr}, {self.sgd_lr}, {self.clip_norm}, {self.recurrent_scale}")

    def adding(self, steps: int, lr: float, clip_norm: float) -> AddingSettings:
        return AddingSettings(lengths=(self.length,), hidden_size=self.hidden_size, steps=max(steps, 1),
                              batch_size=32, lr=lr, clip_norm=clip_norm, forget_bias=self.forget_bias,
                              eval_every=25 if steps <= 500 else 50, seed=self.seed)


def run(settings: GradientSettings, progress=None) -> dict:
    """The four measurements of the module docstring -> a JSON-able dict; progress(str) reports each phase."""
    with blas.single_threaded():  # the lab's matmuls are small: a second BLAS thread costs more than it saves
        return _run(settings, progress)


def _run(settings: GradientSettings, progress) -> dict:
    s = settings
    say = progress or (lambda message: None)
    x, y = adding_problem(s.batch_size, s.length, np.random.default_rng([s.seed, 0]))
    rel = lambda norms: (norms / norms[1]).tolist()  # noqa: E731 - relative to distance 1

    def fresh(cell, scale=None, forget_bias=s.forget_bias):
        rng = np.random.default_rng([s.seed, 1, CELLS.index(cell)])
        return SequenceRegressor(cell, init_parameters(cell, 2, s.hidden_size, rng, scale, forget_bias))

    curves = {f"{cell} at init": rel(gradient_norms(fresh(cell), x, y)) for cell in CELLS}
    curves["lstm at init, forget bias 0"] = rel(gradient_norms(fresh("lstm", forget_bias=0.0), x, y))
    for scale in sorted({*SCALES, s.recurrent_scale}):
        curves[f"rnn at init, scale {scale:g}"] = rel(gradient_norms(fresh("rnn", scale), x, y))
    trained = {}
    if s.train_steps:
        adding = s.adding(s.train_steps, s.lr, 1.0)
        for k, cell in enumerate(CELLS):
            say(f"training {cell} on the adding problem (T={s.length}, at most {s.train_steps} steps)")
            model, record = train(cell, s.length, adding, np.random.SeedSequence([s.seed, 2, k]))
            curves[f"{cell} trained"] = rel(gradient_norms(model, x, y))
            trained[cell] = {key: record[key] for key in ("final_test_mse", "learned", "seconds")}
            trained[cell]["steps"] = record["steps"][-1]
    clipping = {}
    for clip in (0.0, s.clip_norm):
        name = f"clip {clip:g}" if clip else "no clipping"
        say(f"training rnn, scale {s.recurrent_scale:g}, plain SGD, {name}")
        with np.errstate(over="ignore", invalid="ignore"):  # unclipped, it may overflow: that is the lesson
            _, record = train("rnn", s.length, s.adding(s.clip_steps, s.sgd_lr, clip),
                              np.random.SeedSequence([s.seed, 3]), recurrent_scale=s.recurrent_scale,
                              optimizer="sgd")
        clipping[name] = {key: record[key] for key in ("steps", "test_mse", "grad_norm", "final_test_mse")}
    return {"experiment": "gradients", "settings": asdict(s), "distance": list(range(s.length)),
            "relative_norm": curves, "trained": trained, "clipping": clipping}


def table_distances(length: int) -> list[int]:
    """1, 10, 25, 50, 100, 200, 500, 1000, ... below `length`, and the farthest, length - 1."""
    picks = [d for d in (1, 10, 25, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if d < length - 1]
    return picks + [length - 1]


def table(result: dict) -> str:
    """||dL/dh_{T-d}|| relative to d = 1, one row per distance, one column per curve (cell, when)."""
    curves = result["relative_norm"]
    columns = [name for name in curves if "forget bias 0" not in name]
    short = {name: name.replace(" at init", "@init").replace(", scale ", " s=").replace(" trained", " trained")
             for name in columns}
    width = max(11, *(len(v) + 1 for v in short.values()))
    lines = ["||dL/dh_t|| at distance d = T - t, relative to d = 1 "
             f"(adding problem, T = {result['settings']['length']})",
             f"{'d':>6}" + "".join(f"{short[name]:>{width}}" for name in columns)]
    for d in table_distances(result["settings"]["length"]):
        lines.append(f"{d:>6}" + "".join(f"{curves[name][d]:>{width}.2e}" for name in columns))
    for cell, r in result["trained"].items():
        lines.append(f"trained {cell}: test MSE {r['final_test_mse']:.4f} after {r['steps']} steps"
                     f"{' (learned)' if r['learned'] else ''}")
    for name, r in result["clipping"].items():
        finite = [v for v in r["test_mse"] if np.isfinite(v)]
        if np.isfinite(r["final_test_mse"]):
            end = f"test MSE {r['final_test_mse']:.4f} at step {r['steps'][-1]} (at most {max(finite):.3g})"
        else:
            end = f"test MSE not finite from step {r['steps'][-1]} (up to {max(finite, default=np.nan):.3g} before)"
        norms = [v for v in r["grad_norm"] if v is not None and np.isfinite(v)]
        largest = f"; gradient norm up to {max(norms):.3g}" if norms else ""
        lines.append(f"rnn s={result['settings']['recurrent_scale']:g}, SGD, {name}: {end}{largest}")
    return "\n".join(lines)


def plot(result: dict, target) -> None:
    """Four panels: at initialisation; after training; the RNN's recurrent scale; clipping's training curves."""
    curves, s = result["relative_norm"], result["settings"]
    distance = np.asarray(result["distance"])
    fig, axes = report.figure(2, 2, width=11, height=8)

    def draw(ax, names, title):
        for name in names:
            cell = name.split()[0]
            style = "--" if "forget bias 0" in name else "-"
            values = np.asarray(curves[name])
            ax.plot(distance[1:], np.where(values > 0, values, np.nan)[1:], style, label=name,
                    color=report.COLORS.get(cell) if "scale" not in name else None)
        ax.set_yscale("log")
        ax.set_xlabel("distance d = T - t (steps back from the last state)")
        ax.set_ylabel("||dL/dh_t|| / ||dL/dh_{T-1}||")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    draw(axes[0], [n for n in curves if n.endswith("at init") or "forget bias 0" in n],
         f"at initialisation (LSTM forget bias {s['forget_bias']:g})")
    trained = [n for n in curves if n.endswith("trained")]
    if trained:
        draw(axes[1], trained, f"after training on the adding problem, T = {s['length']}")
    else:
        axes[1].set_axis_off()
    draw(axes[2], [n for n in curves if "scale" in n], "vanilla RNN, W_hh = s Q (all singular values s)")
    ax = axes[3]
    for name, r in result["clipping"].items():
        values = np.asarray(r["test_mse"], dtype=float)
        ax.plot(r["steps"], np.where(np.isfinite(values), values, np.nan), marker=".", label=name)
        if not np.isfinite(values[-1]):
            ax.axvline(r["steps"][-1], color="gray", linestyle=":", linewidth=1)
            ax.annotate(f"{name}: not finite", (r["steps"][-1], 1.0), rotation=90, ha="right", va="bottom",
                        fontsize=8, color="gray")
    ax.axhline(BASELINE_MSE, color="gray", linestyle="--", linewidth=1, label="always 1")
    ax.set_yscale("log")
    ax.set_xlabel("training step (plain SGD)")
    ax.set_ylabel("test MSE")
    ax.set_title(f"rnn, s = {s['recurrent_scale']:g}: clipping by global norm")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    report.save_png(fig, target)

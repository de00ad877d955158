"""Optimizers with torch.optim's update rules, and clipping by global norm.

Parameters and gradients are dicts name -> array; `step` updates the
parameters in place (layers hold them by reference). g gradient, p parameter,
lr learning rate, t step count (from 1).

Each parameter keeps its own step count t and may scale the learning rate
(`lr_scale`, e.g. discriminative fine-tuning): as torch.optim does, a parameter
absent from a step's gradients (frozen for now) is not touched and its t does
not advance, so a layer unfrozen late starts its Adam bias correction at t = 1.

    SGD      b = momentum b + g (b = g at t=1);  p -= lr b
    RMSprop  v = alpha v + (1 - alpha) g^2;      p -= lr g / (sqrt(v) + eps)
    Adam     m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
             p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

weight_decay adds wd p to g (L2, as torch's SGD, RMSprop, Adam); Adam with
decoupled=True shrinks p by lr wd first instead (torch's AdamW), as
`rnnkit.config.TrainConfig` asks for adam.
"""

from __future__ import annotations

import math

import numpy as np


class Optimizer:
    """Base: holds the parameters, the learning rate and per-parameter state."""

    def __init__(self, params: dict[str, np.ndarray], lr: float, weight_decay: float = 0.0) -> None:
        self.params, self.lr, self.weight_decay = params, lr, weight_decay
        self.state: dict[str, dict[str, np.ndarray]] = {name: {} for name in params}
        self.steps: dict[str, int] = {name: 0 for name in params}  # per parameter, as torch's state["step"]
        self.lr_scale: dict[str, float] = {}  # name -> multiplier of lr (absent: 1)

    @property
    def t(self) -> int:
        """Steps taken (the most any parameter has taken)."""
        return max(self.steps.values(), default=0)

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """Update the parameters named in `grads` (the others, frozen for now, are left alone)."""
        for name, g in grads.items():
            self.steps[name] += 1
            self._update(self.params[name], g, self.state[name], self.lr * self.lr_scale.get(name, 1.0),
                         self.steps[name])

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, lr: float, t: int) -> None:
        raise NotImplementedError

    def _decayed(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        return g + self.weight_decay * p if self.weight_decay else g


class SGD(Optimizer):
    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self.momentum = momentum

    def _update(self, p, g, state, lr, t) -> None:
        g = self._decayed(p, g)
        if self.momentum:
            if "b" not in state:
                state["b"] = np.array(g, dtype=p.dtype)
            else:
                state["b"] *= self.momentum
                state["b"] += g
            g = state["b"]
        p -= lr * g


class RMSprop(Optimizer):
    def __init__(self, params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self.alpha, self.eps = alpha, eps

    def _update(self, p, g, state, lr, t) -> None:
        g = self._decayed(p, g)
        v = state.setdefault("v", np.zeros_like(p))
        v *= self.alpha
        v += (1.0 - self.alpha) * g * g
        p -= lr * g / (np.sqrt(v) + self.eps)


class Adam(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = True) -> None:
        super().__init__(params, lr, weight_decay)
        self.betas, self.eps, self.decoupled = betas, eps, decoupled

    def _update(self, p, g, state, lr, t) -> None:
        b1, b2 = self.betas
        if self.decoupled:
            p *= 1.0 - lr * self.weight_decay
        else:
            g = self._decayed(p, g)
        m = state.setdefault("m", np.zeros_like(p))
        v = state.setdefault("v", np.zeros_like(p))
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * g * g
        step_size = lr / (1.0 - b1 ** t)
        denom = np.sqrt(v) / math.sqrt(1.0 - b2 ** t) + self.eps
        p -= step_size * m / denom


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}


def make_optimizer(name: str, params: dict[str, np.ndarray], lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> Optimizer:
    """The optimizer `name` (adam | rmsprop | sgd) as rnnkit.config.TrainConfig describes it."""
    if name == "sgd":
        return SGD(params, lr, momentum=momentum, weight_decay=weight_decay)
    if name in OPTIMIZERS:
        return OPTIMIZERS[name](params, lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most max_norm; return the norm before.

    As torch.nn.utils.clip_grad_norm_: scale = max_norm / (norm + 1e-6), applied only when below 1.
    """
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    scale = max_norm / (norm + 1e-6)
    if scale < 1.0:
        for g in grads.values():
            g *= scale
    return norm

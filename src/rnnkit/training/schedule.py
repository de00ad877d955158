"""The learning rate of every step, and which layers train: warm-up, decay, discriminative rates, unfreezing.

Both engines' backends ask this module, so a schedule means the same on each.
Everything is a pure function of (epoch, step of the run, steps of the run):
nothing to save in a checkpoint, and a resumed run gets the same rates.

    exponential  lr * lr_decay^(epoch - 1)                  (per epoch; the default)
    linear       lr * (1 - p)                               p: progress after the warm-up, 0 -> 1
    cosine       lr * (1 + cos(pi p)) / 2
    warm-up      the first `warmup` share of the steps rise linearly to the rate above

Layers, for discriminative learning rates and gradual unfreezing (Howard &
Ruder 2018, ULMFiT), count from the top: depth 0 is everything above the
recurrent stack (the head), depth 1 its top layer, ..., depth L the first
layer, depth L + 1 the embedding. A layer at depth d learns at
lr / layer_lr_decay^d; with gradual unfreezing, epoch e trains depths < e.
"""

from __future__ import annotations

import math
import re

from rnnkit.config import TrainConfig

_RECURRENT_LAYER = re.compile(r"(?:^|\.)rnn\.\w+_l(\d+)(?:_reverse)?$")


def layer_depths(names) -> dict[str, int]:
    """Depth from the top (see the module docstring) of each parameter name (PyTorch names, `rnnkit.params`)."""
    layers = {name: int(m.group(1)) for name in names if (m := _RECURRENT_LAYER.search(name))}
    count = max(layers.values(), default=-1) + 1
    depths = {}
    for name in names:
        if name in layers:
            depths[name] = count - layers[name]
        elif name.split(".")[-2:-1] == ["embedding"]:
            depths[name] = count + 1
        else:
            depths[name] = 0
    return depths


def uses_layers(config: TrainConfig) -> bool:
    """Whether the parameters need grouping by depth (else one group, as before these options)."""
    return config.layer_lr_decay != 1.0 or config.gradual_unfreeze


def lr_scale(config: TrainConfig, depth: int) -> float:
    """The learning rate multiplier of a layer at `depth`."""
    return config.layer_lr_decay ** -depth


def trainable_below(config: TrainConfig, epoch: int) -> int | None:
    """Depths < this train in `epoch` (1-based); None: every layer."""
    return epoch if config.gradual_unfreeze else None


def learning_rate(config: TrainConfig, epoch: int, step: int, total_steps: int) -> float:
    """The top layer's learning rate for step `step` (0-based, counted over the run) in `epoch` (1-based).

    `total_steps` is the run's length, epochs x steps per epoch (early stopping may end it sooner).
    """
    lr = config.learning_rate
    if config.lr_schedule == "exponential":
        lr *= config.lr_decay ** (epoch - 1)
    warm = round(config.warmup * total_steps)
    if step < warm:
        return lr * (step + 1) / warm
    if config.lr_schedule == "exponential":
        return lr
    progress = min(1.0, (step - warm) / max(1, total_steps - warm))
    if config.lr_schedule == "linear":
        return lr * (1.0 - progress)
    return lr * 0.5 * (1.0 + math.cos(math.pi * progress))

"""Move weights between an nn.Module and the shared tensor names of a bundle."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnkit.errors import BundleError
from rnnkit.params import parameter_shapes


def export_tensors(model: nn.Module) -> dict[str, np.ndarray]:
    """model.shared_parameters() as float32 numpy arrays (copies)."""
    return {name: p.detach().to("cpu", torch.float32).numpy().copy()
            for name, p in model.shared_parameters().items()}


def load_tensors(model: nn.Module, tensors: dict[str, np.ndarray]) -> nn.Module:
    """Copy `tensors` into the model; names and shapes must match its config exactly."""
    expected = parameter_shapes(model.config)
    params = model.shared_parameters()
    if set(expected) != set(params):
        raise AssertionError("torch model parameters disagree with rnnkit.params")  # a bug, not user error
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise BundleError(f"weights do not match the model: missing {missing[:5]}, unexpected {extra[:5]}")
    with torch.no_grad():
        for name, param in params.items():
            value = torch.as_tensor(np.asarray(tensors[name]), dtype=param.dtype)
            if tuple(value.shape) != tuple(param.shape):
                raise BundleError(f"tensor {name} has shape {tuple(value.shape)}, the model needs {tuple(param.shape)}")
            param.copy_(value)
    return model

"""Run a bundle's model on either engine behind one numpy-in, numpy-out function.

The numpy engine never imports torch (fast start; the light runtime); the torch
engine is imported only when asked for.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from rnnkit.bundle import Bundle
from rnnkit.errors import RnnkitError
from rnnkit.optional import import_torch

TEXT_TO_SCORES = ("many_to_one", "one_to_one")  # the architectures a text classifier may have


def many_to_one_logits(bundle: Bundle, engine: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function (ids (N, T), lengths (N,)) -> logits (N, O) float32 for a bundle of a text in, scores out:
    many_to_one (recurrent), or one_to_one (a bag of words)."""
    if engine == "numpy":
        from rnnkit.numpy_engine import build_model, inference

        config, params = bundle.config, build_model(bundle.config, bundle.tensors).params
        if config.architecture == "one_to_one":
            return lambda ids, lengths: np.asarray(inference.bag_of_words_logits(config, params, ids, lengths),
                                                   dtype=np.float32)
        from rnnkit.numpy_engine.input_table import InputTable

        layers = inference.prepare_layers(config, params)  # a bundle's weights never change: prepare them once
        table = InputTable(params["embedding.weight"], layers[0])  # built once it pays (many texts scored)
        return lambda ids, lengths: np.asarray(
            inference.many_to_one_logits(config, params, ids, lengths, layers, table), dtype=np.float32)
    if engine == "torch":
        torch = import_torch()
        from rnnkit.torch_engine import build_model, load_tensors

        module = load_tensors(build_model(bundle.config), bundle.tensors).eval()

        def run(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()

        return run
    raise RnnkitError(f"unknown engine {engine!r}; use numpy or torch")

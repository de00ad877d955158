"""rnnkit: recurrent neural networks from scratch (NumPy) and fast (PyTorch).

    import rnnkit
    model = rnnkit.load("runs/imdb")            # any bundle directory
    model.predict(["A wonderful film."])         # sentiment bundles

`load` picks the engine: "numpy" (default; no torch import) or "torch".
"""

__version__ = "0.1.0"


def load(path, engine: str = "numpy"):
    """Load a bundle directory as a ready-to-use predictor for its task."""
    from rnnkit.tasks import load_predictor

    return load_predictor(path, engine=engine)


__all__ = ["load", "__version__"]

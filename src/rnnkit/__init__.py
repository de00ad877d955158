"""rnnkit: recurrent neural networks from scratch (NumPy) and fast (PyTorch).

    import rnnkit
    model = rnnkit.train("classify", data="tickets.csv", out="runs/tickets", epochs=5)
    model.predict(["The app crashes when I log in"], top=3)
    model.history                                # one dict per epoch
    model = rnnkit.load("runs/imdb")            # any bundle directory
    model.predict(["A wonderful film."])

`load` picks the engine: "numpy" (default; no torch import) or "torch".
This module is the Python API's front door: it reaches the tasks (and, for
`train`, the command line's options) only inside its functions.
"""

__version__ = "0.1.0"


def load(path, engine: str = "numpy"):
    """Load a bundle directory as a ready-to-use predictor for its task."""
    from rnnkit.tasks import load_predictor

    return load_predictor(path, engine=engine)


def train(task: str, /, *, out, **options):
    """Train a model of `task` and return it loaded (numpy engine), as `rnnkit train TASK` would.

    task: "classify" (your labelled texts), "imdb", "charlm", "wordlm" (`rnnkit pretrain`) or "seq2seq".
    The options are the command line's flags with underscores for dashes (`rnnkit train TASK --help` lists
    them), e.g.

        rnnkit.train("classify", data="tickets.csv", out="runs/tickets", epochs=5, label_field="team")
        rnnkit.train("charlm", text="input.txt", out="runs/lm", hidden=256, engine="numpy")
        rnnkit.train("wordlm", text=["aclImdb_v1.tar.gz"], out="runs/imdb-lm", max_tokens=1_000_000)

    Unknown or missing options raise a ConfigError naming them; bad data raises the error the
    command line prints. The returned model's `history` lists each epoch's metrics.
    """
    from rnnkit.cli import train_from_python

    train_from_python(task, {"out": out, **options})
    return load(out)


__all__ = ["load", "train", "__version__"]

"""What every command shares: model and training flags, output and text checks, opening a bundle for a
command, JSON-lines streaming, the closing lines of a training run, and one line for a failed file operation.

The one table of which command serves which operation (`COMMANDS`) lives here;
each task's predictor lists its operations, so a bundle given to a command of
another task is answered with one line naming its task and the command that
fits it (exit 2).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

from rnnkit.errors import InputError

# predictor operation (see rnnkit.tasks.protocol) -> the command that asks for it
COMMANDS = {"predict": "rnnkit predict", "explain": "rnnkit predict --explain", "evaluate": "rnnkit evaluate",
            "generate": "rnnkit generate", "translate": "rnnkit translate"}


def open_bundle(path, operation: str, engine: str = "numpy"):
    """The predictor of the bundle at `path` if its task does `operation`; else one line naming the fix, exit 2."""
    from rnnkit.tasks import load_predictor, require

    model = load_predictor(path, engine=engine)
    require(model, operation, COMMANDS[operation], COMMANDS)
    return model


# --------------------------------------------------------------------------- flags


def add_model_arguments(parser: argparse.ArgumentParser, **defaults) -> None:
    """Flags that build a ModelConfig; `defaults` overrides the task's default model."""
    d = {"cell": "gru", "layers": 1, "embedding_dim": 128, "hidden": 128, "bidirectional": True,
         "dropout": 0.3, "pooling": "mean_max", **defaults}
    group = parser.add_argument_group("model")
    group.add_argument("--cell", choices=("rnn", "lstm", "gru"), default=d["cell"], help="recurrent cell (default %(default)s)")
    group.add_argument("--layers", type=int, default=d["layers"], help="stacked recurrent layers (default %(default)s)")
    group.add_argument("--embedding-dim", type=int, default=d["embedding_dim"], help="embedding size (default %(default)s)")
    group.add_argument("--hidden", type=int, default=d["hidden"], help="hidden units per direction (default %(default)s)")
    if "bidirectional" in d and d["bidirectional"] is not None:
        group.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=d["bidirectional"],
                           help="read each sequence both ways (default %(default)s)")
    group.add_argument("--dropout", type=float, default=d["dropout"], help="dropout probability (default %(default)s)")
    if d.get("pooling") is not None:
        group.add_argument("--pooling", choices=("last", "max", "mean", "mean_max"), default=d["pooling"],
                           help="reduce the sequence by its last state or by pooling (default %(default)s)")


def add_model_choice(parser: argparse.ArgumentParser) -> None:
    """--model rnn|bow for a text classifier: the recurrent network (many_to_one), or a bag of words (one_to_one)."""
    parser.add_argument("--model", choices=("rnn", "bow"), default="rnn",
                        help="rnn: embedding -> recurrent layers -> pooling -> dense (default); bow: a bag of words, "
                             "no recurrence: the mean of the text's embeddings -> dense (--hidden units, tanh) -> "
                             "dense; word order is lost (--cell, --layers, --bidirectional and --pooling do not apply)")


def add_train_arguments(parser: argparse.ArgumentParser, **defaults) -> None:
    """Flags that build a TrainConfig, and how the run goes (engine, device, threads, resume, progress)."""
    d = {"epochs": 6, "batch_size": 64, "optimizer": "adam", "lr": 2e-3, "lr_decay": 1.0, "lr_schedule": "exponential",
         "warmup": 0.0, "weight_decay": 0.0, "clip_norm": 5.0, "patience": 2, **defaults}
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=d["epochs"], help="maximum epochs (default %(default)s)")
    group.add_argument("--batch-size", type=int, default=d["batch_size"], help="(default %(default)s)")
    group.add_argument("--optimizer", choices=("adam", "rmsprop", "sgd"), default=d["optimizer"], help="(default %(default)s)")
    group.add_argument("--lr", type=float, default=d["lr"], help="learning rate (default %(default)s)")
    group.add_argument("--lr-decay", type=float, default=d["lr_decay"],
                       help="multiply the learning rate by this each epoch (--lr-schedule exponential; "
                            "default %(default)s)")
    group.add_argument("--lr-schedule", choices=("exponential", "linear", "cosine"), default=d["lr_schedule"],
                       help="exponential: --lr-decay per epoch; linear or cosine: down to 0 at the last step of "
                            "--epochs, per step (default %(default)s)")
    group.add_argument("--warmup", type=float, default=d["warmup"],
                       help="share of the run's steps over which the learning rate rises from 0 (default %(default)s)")
    group.add_argument("--layer-lr-decay", type=float, default=1.0,
                       help="discriminative fine-tuning: each layer below the head learns at the rate of the one "
                            "above / this (ULMFiT: 2.6; default 1 = one rate)")
    group.add_argument("--gradual-unfreeze", action="store_true",
                       help="epoch 1 trains the head only, each later epoch one more layer, top down (ULMFiT)")
    group.add_argument("--weight-decay", type=float, default=d["weight_decay"],
                       help="L2 penalty (AdamW-style for adam; default %(default)s)")
    group.add_argument("--clip-norm", type=float, default=d["clip_norm"], help="clip gradient global norm; 0 = off (default %(default)s)")
    group.add_argument("--patience", type=int, default=d["patience"],
                       help="stop after this many epochs without a better validation loss; 0 = never (default %(default)s)")
    group.add_argument("--val-fraction", type=float, default=0.1, help="share of training data held out for validation")
    group.add_argument("--seed", type=int, default=0, help="seed for weights, data order and dropout")
    group.add_argument("--threads", type=int, default=0,
                       help="torch threads, or numpy's BLAS threads with --engine numpy (0 = every core other "
                            "processes leave free, re-checked as training runs)")
    group.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (torch engine)")
    group.add_argument("--engine", choices=("torch", "numpy"), default="torch",
                       help="torch (fast) or numpy (from scratch, no torch needed); same bundle (default %(default)s)")
    group.add_argument("--checkpoint-every", type=int, default=200,
                       help="save the resumable training state every N steps (default %(default)s; 0 = epoch ends only)")
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from OUT/checkpoint (same options and data as the first run)")
    group.add_argument("--overwrite", action="store_true",
                       help="replace the run already in OUT (without it, an existing run is never replaced)")
    group.add_argument("--deterministic", action="store_true",
                       help="torch.use_deterministic_algorithms(True): bit-identical reruns on one machine")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def add_word_lm_arguments(cmd: argparse.ArgumentParser, model, defaults: dict) -> None:
    """The model flags a word language model takes (rnnkit pretrain, train generate-review) into the `model`
    group, and --precision; `defaults` holds cell, layers, hidden, embedding_dim and dropout."""
    from rnnkit.tasks.lm import PRECISIONS
    from rnnkit.tasks.wordlm.settings import SOFTMAXES

    d = defaults
    model.add_argument("--cell", choices=("rnn", "lstm", "gru"), default=d["cell"], help="(default %(default)s)")
    model.add_argument("--layers", type=int, default=d["layers"], help="1..3 stacked layers (default %(default)s)")
    model.add_argument("--hidden", type=int, default=d["hidden"], help="hidden units (default %(default)s)")
    model.add_argument("--embedding-dim", type=int, default=d["embedding_dim"], help="(default %(default)s)")
    model.add_argument("--dropout", type=float, default=d["dropout"],
                       help="on embeddings, between layers and before the softmax (default %(default)s)")
    model.add_argument("--softmax", choices=SOFTMAXES, default="auto",
                       help="full (V-way), adaptive (frequent words in a small head, rare ones in clusters) or auto: "
                            "adaptive above 5,000 words (default %(default)s)")
    model.add_argument("--tie", action=argparse.BooleanOptionalAction, default=None,
                       help="a full softmax's output matrix is the embedding (a projection H -> E when --hidden != "
                            "--embedding-dim); default: tied")
    model.add_argument("--cutoffs", type=_cutoffs, metavar="C1,C2,...",
                       help="adaptive softmax cluster boundaries (word ids by frequency; default V/15,V/3: "
                            "2000,10000 for 30,000 words)")
    cmd.add_argument("--precision", choices=PRECISIONS, default="auto",
                     help="training forward pass: auto = bf16 on CPUs with AMX-BF16 or AVX512-BF16, else fp32 "
                          "(default %(default)s)")


def _cutoffs(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"give increasing word ids separated by commas, e.g. 2000,10000; "
                                         f"got {text!r}") from None


def model_config_from(args, **fixed):
    from rnnkit.config import ModelConfig

    if getattr(args, "model", "rnn") == "bow":  # the recurrent flags do not apply: neutral values, not the defaults
        return ModelConfig(architecture="one_to_one", embedding_dim=args.embedding_dim, hidden_size=args.hidden,
                           dropout=args.dropout, num_layers=1, bidirectional=False, pooling="mean", **fixed)
    return ModelConfig(cell=args.cell, num_layers=args.layers, embedding_dim=args.embedding_dim,
                       hidden_size=args.hidden, bidirectional=args.bidirectional, dropout=args.dropout,
                       pooling=args.pooling, **fixed)


def train_config_from(args):
    from rnnkit.config import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                       learning_rate=args.lr, lr_decay=args.lr_decay, weight_decay=args.weight_decay,
                       clip_norm=args.clip_norm, patience=args.patience, validation_fraction=args.val_fraction,
                       seed=args.seed, threads=args.threads, device=args.device,
                       checkpoint_every=args.checkpoint_every, lr_schedule=args.lr_schedule, warmup=args.warmup,
                       layer_lr_decay=args.layer_lr_decay, gradual_unfreeze=args.gradual_unfreeze)


def run_options(args) -> dict:
    """The keyword arguments of every task's train() that come from the run flags."""
    return {"progress": not args.quiet, "resume": args.resume, "overwrite": args.overwrite, "engine": args.engine,
            "deterministic": args.deterministic}


# --------------------------------------------------------------------------- checks


def check_output_dir(out: str) -> Path:
    """--out as a Path, refused now (not after an epoch of training) when it cannot hold a bundle."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {out} is a file; give a directory for the bundle")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"--out {out}: {existing} is a file, so no directory can be made there; give another path")
    try:  # as root, permission bits say nothing: try it
        fd, probe = tempfile.mkstemp(prefix=".rnnkit-write-test-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"--out {out} cannot be written ({existing}: {exc.strerror}); "
                         "choose a directory you may write to") from None
    return path


def check_new_output_file(path: str, flag: str) -> Path:
    """`flag`'s PATH, refused if something rnnkit did not write is there (a picture rnnkit drew may be
    replaced: its PNG says "rnnkit" in its Software field)."""
    from rnnkit.fileio import WRITTEN_BY

    target = Path(path)
    if not target.exists() and not target.is_symlink():
        return target
    if not target.is_file() or target.is_symlink():
        raise InputError(f"{flag} {path} is not a regular file; give the path of a new .png file")
    with open(target, "rb") as f:
        head = f.read(4096)
    if not (head.startswith(b"\x89PNG") and WRITTEN_BY.encode() in head):
        raise InputError(f"{flag} {path} already exists and rnnkit did not write it; give a new file name "
                         "(rnnkit replaces only pictures it drew)")
    return target


def checked_utf8(text: str, what: str = "the review") -> str:
    """`text` from the command line, refused if it holds bytes that are not UTF-8 (surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} is not valid UTF-8 text; re-encode it (e.g. iconv -t UTF-8)") from None
    return text


# --------------------------------------------------------------------------- output


def stdin_bytes():
    """The binary stdin to read texts from; InputError when there is none (`rnnkit predict B - <&-`: with
    file descriptor 0 closed, Python sets sys.stdin to None)."""
    if sys.stdin is None:
        raise InputError("- reads the texts from stdin, but stdin is closed; pipe them in, one per line "
                         "(e.g. rnnkit predict BUNDLE - < texts.txt), or give them as arguments")
    return sys.stdin.buffer


def answer_lines(stream, answer: Callable[[str], dict], could_not: str) -> int:
    """One text per input line -> one JSON object per output line (with its "line"); a line that cannot be
    answered gets {"error": ...} and the others go on. Exit status 1 when any line failed."""
    failures = 0
    for number, raw in enumerate(stream, start=1):
        try:
            result = {"line": number, **answer(raw.rstrip(b"\r\n").decode("utf-8"))}
        except UnicodeDecodeError:
            result = {"line": number, "error": "not valid UTF-8; re-encode the input (e.g. iconv -t UTF-8)"}
        except InputError as exc:
            result = {"line": number, "error": str(exc)}
        failures += "error" in result
        print(json.dumps(result, ensure_ascii=False), flush=True)
    if failures:
        print(f"rnnkit: {failures} line(s) could not be {could_not} (see their \"error\")", file=sys.stderr)
    return 1 if failures else 0


def print_trained(summary: str, minutes: float, out: Path, *next_steps: str) -> None:
    """The closing lines of every train command: the best validation result, the time, the bundle, what next."""
    print(f"{summary} ({minutes:.1f} min); bundle saved to {out}")
    if next_steps:
        print("next: " + "   |   ".join(next_steps))


OS_ERROR_HINTS = {
    errno.ENOSPC: "the disk is full; free some space and run the command again (a training run continues with "
                  "--resume; files rnnkit saved before are intact)",
    errno.EDQUOT: "the disk quota is used up; free some space and run the command again",
    errno.EACCES: "permission denied; choose a location you may write to (e.g. --out) or fix the permissions",
    errno.EPERM: "operation not permitted; choose another location or fix the permissions",
    errno.EROFS: "the file system is read-only; choose another location (e.g. --out)",
    errno.EISDIR: "a directory is in the way where a file is expected; give a file path",
    errno.ENOTDIR: "a file is in the way where a directory is expected; give a directory path",
    errno.ENOENT: "no such file or directory; check the path",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: which path, what the system said, and what to do."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or exc.__class__.__name__
    hint = OS_ERROR_HINTS.get(exc.errno)
    return f"{where}{what}" + (f" — {hint}" if hint else "")

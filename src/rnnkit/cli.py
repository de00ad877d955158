"""The `rnnkit` command line.

    rnnkit train imdb --data PATH --out runs/imdb      train the sentiment model on IMDB
    rnnkit demo                                        the whole path offline, in under a minute
    rnnkit evaluate runs/imdb --data PATH              test accuracy, loss, confusion matrix
    rnnkit predict runs/imdb "What a film!"            label + probability (or - for stdin)
    rnnkit data imdb                                   download IMDB (checksum verified)

Errors a user can cause print one line ("rnnkit: error: ...") and exit non-zero.
Heavy imports (torch) happen inside the commands that need them.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from rnnkit import __version__
from rnnkit.errors import ConfigError, InputError, RnnkitError

# --------------------------------------------------------------------------- shared options


def add_model_arguments(parser: argparse.ArgumentParser, **defaults) -> None:
    """Flags that build a ModelConfig; `defaults` overrides the task's default model."""
    d = {"cell": "gru", "layers": 1, "embedding_dim": 128, "hidden": 128, "bidirectional": True,
         "dropout": 0.3, "pooling": "mean_max", **defaults}
    group = parser.add_argument_group("model")
    group.add_argument("--cell", choices=("rnn", "lstm", "gru"), default=d["cell"], help="recurrent cell (default %(default)s)")
    group.add_argument("--layers", type=int, default=d["layers"], help="stacked recurrent layers (default %(default)s)")
    group.add_argument("--embedding-dim", type=int, default=d["embedding_dim"], help="embedding size (default %(default)s)")
    group.add_argument("--hidden", type=int, default=d["hidden"], help="hidden units per direction (default %(default)s)")
    group.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=d["bidirectional"],
                       help="read each sequence both ways (default %(default)s)")
    group.add_argument("--dropout", type=float, default=d["dropout"], help="dropout probability (default %(default)s)")
    group.add_argument("--pooling", choices=("last", "max", "mean", "mean_max"), default=d["pooling"],
                       help="reduce the sequence by its last state or by pooling (default %(default)s)")


def add_train_arguments(parser: argparse.ArgumentParser, **defaults) -> None:
    """Flags that build a TrainConfig."""
    d = {"epochs": 6, "batch_size": 64, "optimizer": "adam", "lr": 2e-3, "clip_norm": 5.0, "patience": 2, **defaults}
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=d["epochs"], help="maximum epochs (default %(default)s)")
    group.add_argument("--batch-size", type=int, default=d["batch_size"], help="(default %(default)s)")
    group.add_argument("--optimizer", choices=("adam", "rmsprop", "sgd"), default=d["optimizer"], help="(default %(default)s)")
    group.add_argument("--lr", type=float, default=d["lr"], help="learning rate (default %(default)s)")
    group.add_argument("--lr-decay", type=float, default=1.0, help="multiply the learning rate by this each epoch")
    group.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty (AdamW-style for adam)")
    group.add_argument("--clip-norm", type=float, default=d["clip_norm"], help="clip gradient global norm; 0 = off (default %(default)s)")
    group.add_argument("--patience", type=int, default=d["patience"],
                       help="stop after this many epochs without a better validation loss; 0 = never (default %(default)s)")
    group.add_argument("--val-fraction", type=float, default=0.1, help="share of training data held out for validation")
    group.add_argument("--seed", type=int, default=0, help="seed for weights, data order and dropout")
    group.add_argument("--threads", type=int, default=0,
                       help="torch threads, or numpy's BLAS threads with --engine numpy (0 = every core)")
    group.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (torch engine)")
    group.add_argument("--engine", choices=("torch", "numpy"), default="torch",
                       help="torch (fast) or numpy (from scratch, no torch needed); same bundle (default %(default)s)")
    group.add_argument("--checkpoint-every", type=int, default=200,
                       help="save the resumable training state every N steps (default %(default)s; 0 = epoch ends only)")
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from OUT/checkpoint (same options as the first run)")
    group.add_argument("--deterministic", action="store_true",
                       help="torch.use_deterministic_algorithms(True): bit-identical reruns on one machine")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def model_config_from(args, **fixed):
    from rnnkit.config import ModelConfig

    return ModelConfig(cell=args.cell, num_layers=args.layers, embedding_dim=args.embedding_dim,
                       hidden_size=args.hidden, bidirectional=args.bidirectional, dropout=args.dropout,
                       pooling=args.pooling, **fixed)


def train_config_from(args):
    from rnnkit.config import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                       learning_rate=args.lr, lr_decay=args.lr_decay, weight_decay=args.weight_decay,
                       clip_norm=args.clip_norm, patience=args.patience, validation_fraction=args.val_fraction,
                       seed=args.seed, threads=args.threads, device=args.device,
                       checkpoint_every=args.checkpoint_every)


def _check_output_dir(out: str) -> Path:
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


# --------------------------------------------------------------------------- train imdb / demo


def add_sentiment_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vocab-size", type=int, default=30000,
                        help="words in the vocabulary incl. <pad> and <unk>; 0 = every training word (default %(default)s)")
    parser.add_argument("--maxlen", type=int, default=500, help="keep at most this many tokens per review (default %(default)s)")
    parser.add_argument("--truncating", choices=("pre", "post"), default="pre",
                        help="drop tokens from the start (pre: keep the ending) or the end (default %(default)s)")
    parser.add_argument("--padding", choices=("pre", "post"), default="post",
                        help="post: length-bucketed, masked batches (fast); pre: Keras-style fixed maxlen (default %(default)s)")
    parser.add_argument("--packed", action="store_true",
                        help="run recurrent layers on packed sequences instead of masked padded batches "
                             "(same results; slower on CPU, may win on GPU)")


def cmd_train_imdb(args) -> int:
    from rnnkit.tasks import sentiment

    out = _check_output_dir(args.out)
    settings = sentiment.SentimentSettings(maxlen=args.maxlen, truncating=args.truncating, padding=args.padding,
                                           vocab_size=args.vocab_size or None)
    train_config = train_config_from(args)  # validate every option before reading any data
    sequences, labels, vocab = sentiment.imdb_train_split(args.data, settings.vocab_size, progress=not args.quiet)
    model_config = model_config_from(args, vocab_size=len(vocab))
    started = time.perf_counter()
    if args.deterministic and args.engine == "torch":
        import torch

        torch.use_deterministic_algorithms(True)
    best = sentiment.train(sequences, labels, vocab, model_config, train_config, settings, out,
                           progress=not args.quiet, extra_settings={"dataset": "imdb"}, packed=args.packed,
                           resume=args.resume, engine=args.engine)
    minutes = (time.perf_counter() - started) / 60
    print(f"best validation accuracy {best['accuracy']:.4f}, loss {best['loss']:.4f} "
          f"({minutes:.1f} min); bundle saved to {out}")
    print(f"next: rnnkit evaluate {out} --data PATH   |   rnnkit predict {out} \"a review\"")
    return 0


def cmd_demo(args) -> int:
    from rnnkit.config import TrainConfig
    from rnnkit.tasks import load_predictor, sentiment

    out = _check_output_dir(args.out)
    print(f"rnnkit demo: training a small {args.cell.upper()} on 4,000 generated reviews with the {args.engine} "
          "engine (offline)...", file=sys.stderr)
    sequences, labels, vocab = sentiment.demo_data(4000, seed=args.seed)
    test_seqs, test_labels, _ = sentiment.demo_data(1000, seed=args.seed + 1, vocab=vocab)
    model_config = model_config_from(args, vocab_size=len(vocab))
    train_config = TrainConfig(epochs=args.epochs, batch_size=32, learning_rate=5e-3, patience=2, seed=args.seed)
    settings = sentiment.SentimentSettings(maxlen=100, vocab_size=None)
    sentiment.train(sequences, labels, vocab, model_config, train_config, settings, out, progress=not args.quiet,
                    extra_settings={"dataset": "demo"}, engine=args.engine)
    model = load_predictor(out, engine="numpy")  # the light runtime runs what either engine trained
    metrics = model.evaluate(test_seqs, test_labels)
    print(f"held-out generated reviews: accuracy {metrics['accuracy']:.3f}, loss {metrics['loss']:.3f}")
    for text in ("The plot was wonderful and the cast was great.", "Not good. The ending was a boring mess."):
        result = model.predict([text])[0]
        print(f"  {result['label']:8s} {result['probability']:.3f}  {text}")
    print(f"bundle saved to {out}; try: rnnkit predict {out} \"a funny and charming film\"")
    return 0


# --------------------------------------------------------------------------- evaluate / predict


def cmd_evaluate(args) -> int:
    from rnnkit.tasks import load_predictor, sentiment

    model = load_predictor(args.bundle, engine=args.engine)
    if model.bundle.task == "charlm":
        from rnnkit.tasks.charlm import cmd_evaluate_charlm

        return cmd_evaluate_charlm(model, args)
    if model.bundle.settings.get("dataset") == "demo":
        seed = int(model.bundle.train.get("seed", 0)) + 1
        sequences, labels, _ = sentiment.demo_data(1000, seed=seed, vocab=model.vocab)
    else:
        sequences, labels = sentiment.imdb_split_for(model.vocab, args.data, args.split, progress=not args.quiet)
    metrics = model.evaluate(sequences, labels)
    metrics.update({"split": args.split, "engine": args.engine, "bundle": str(args.bundle)})
    if args.json:
        print(json.dumps(metrics))
        return 0
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    print(f"{args.split} reviews: {metrics['count']}   accuracy {metrics['accuracy']:.4f}   loss {metrics['loss']:.4f}"
          f"   precision {metrics['precision']:.4f}   recall {metrics['recall']:.4f}   F1 {metrics['f1']:.4f}")
    print("confusion matrix       predicted negative   predicted positive")
    print(f"  actual negative      {tn:>18d}   {fp:>18d}")
    print(f"  actual positive      {fn:>18d}   {tp:>18d}")
    return 0


def cmd_predict(args) -> int:
    from rnnkit.tasks import load_predictor

    model = load_predictor(args.bundle, engine=args.engine)
    if args.texts == ["-"]:
        return _predict_stream(model, sys.stdin.buffer)
    if not args.texts:
        raise InputError('give a review to judge, e.g. rnnkit predict BUNDLE "A moving film.", or - to read stdin')
    texts = [_checked_utf8(t) for t in args.texts]
    for result, text in zip(model.predict(texts), texts):
        if args.json:
            print(json.dumps({"text": text, **result}, ensure_ascii=False))
        else:
            note = "  (truncated)" if result["truncated"] else ""
            print(f"{result['label']}\t{result['probability']:.4f}{note}")
    return 0


def _checked_utf8(text: str, what: str = "the review") -> str:
    """`text` from the command line, refused if it holds bytes that are not UTF-8 (surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} is not valid UTF-8 text; re-encode it (e.g. iconv -t UTF-8)") from None
    return text


def _predict_stream(model, stream) -> int:
    """One review per input line -> one JSON object per output line; bad lines get {"error": ...}."""
    failures = 0
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError:
            result = {"line": number, "error": "not valid UTF-8; re-encode the input (e.g. iconv -t UTF-8)"}
        else:
            try:
                result = {"line": number, **model.predict([text])[0]}
            except InputError as exc:
                result = {"line": number, "error": str(exc).removeprefix("review 1: ")}
        failures += "error" in result
        print(json.dumps(result, ensure_ascii=False), flush=True)
    if failures:
        print(f"rnnkit: {failures} line(s) could not be judged (see their \"error\")", file=sys.stderr)
    return 1 if failures else 0


# --------------------------------------------------------------------------- data


def cmd_data_imdb(args) -> int:
    from rnnkit.data import imdb
    from rnnkit.data.download import download

    dest = Path(args.dest) if args.dest else imdb.default_data_path()
    if dest.exists() and not args.force:
        print(f"{dest} already exists (use --force to download again)")
        return 0
    algorithm = "md5" if args.checksum == imdb.UPSTREAM_MD5 else "sha256"
    download(args.url, dest, args.checksum, algorithm=algorithm, progress=not args.quiet)
    print(f"saved {dest}; train with: rnnkit train imdb --data {dest} --out runs/imdb")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnkit", description="Recurrent neural networks: train, evaluate, predict.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a model").add_subparsers(dest="task", metavar="TASK", required=True)
    imdb = train.add_parser("imdb", help="movie-review sentiment on IMDB (many-to-one)",
                            description="Train embedding -> recurrent layers -> sigmoid on IMDB reviews.")
    imdb.add_argument("--data", help="aclImdb_v1.tar.gz or an aclImdb/ folder (default: $RNNKIT_IMDB, then the download location)")
    imdb.add_argument("--out", default="runs/imdb", help="bundle directory (default %(default)s)")
    add_sentiment_data_arguments(imdb)
    add_model_arguments(imdb)
    add_train_arguments(imdb)
    imdb.set_defaults(func=cmd_train_imdb)

    demo = commands.add_parser("demo", help="train and try a sentiment model on built-in generated reviews (offline, < 1 min)")
    demo.add_argument("--out", default="runs/demo", help="bundle directory (default %(default)s)")
    demo.add_argument("--epochs", type=int, default=6)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--engine", choices=("torch", "numpy"), default="torch",
                      help="training engine (default %(default)s); predictions always run on the numpy engine")
    demo.add_argument("--quiet", action="store_true")
    add_model_arguments(demo, hidden=32, embedding_dim=32, dropout=0.0, pooling="last")
    demo.set_defaults(func=cmd_demo)

    evaluate = commands.add_parser("evaluate", help="score a bundle: sentiment accuracy, loss and confusion matrix on a test "
                                   "split; charlm nats and bits per character on a text")
    evaluate.add_argument("bundle", help="bundle directory written by rnnkit train")
    evaluate.add_argument("--data", help="IMDB tarball or folder (default: $RNNKIT_IMDB, then the download location)")
    evaluate.add_argument("--text", help="charlm bundles: UTF-8 text to score in nats and bits per character "
                          "(default: the validation part of the training text)")
    evaluate.add_argument("--split", choices=("test", "train"), default="test")
    evaluate.add_argument("--engine", choices=("numpy", "torch"), default="numpy")
    evaluate.add_argument("--json", action="store_true", help="print metrics as one JSON object")
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)

    predict = commands.add_parser("predict", help="sentiment of reviews given as arguments, or one per line on stdin (-)")
    predict.add_argument("bundle", help="bundle directory written by rnnkit train")
    predict.add_argument("texts", nargs="*", help='reviews to judge; "-" reads one review per line from stdin (JSON lines out)')
    predict.add_argument("--engine", choices=("numpy", "torch"), default="numpy", help="numpy needs no torch (default)")
    predict.add_argument("--json", action="store_true", help="print one JSON object per review")
    predict.set_defaults(func=cmd_predict)

    data = commands.add_parser("data", help="download data sets").add_subparsers(dest="dataset", metavar="DATASET", required=True)
    from rnnkit.data.imdb import UPSTREAM_MD5, UPSTREAM_URL

    get_imdb = data.add_parser("imdb", help="download the IMDB Large Movie Review Dataset (84 MB)")
    get_imdb.add_argument("--dest", help="where to save the tarball (default: ~/.cache/rnnkit/data/, or $RNNKIT_CACHE/data/)")
    get_imdb.add_argument("--url", default=UPSTREAM_URL)
    get_imdb.add_argument("--checksum", default=UPSTREAM_MD5, help="expected md5 (upstream default) or sha256 of the file")
    get_imdb.add_argument("--force", action="store_true", help="download even if the file exists")
    get_imdb.add_argument("--quiet", action="store_true")
    get_imdb.set_defaults(func=cmd_data_imdb)

    for module_name in TASK_COMMANDS:
        importlib.import_module(module_name).register(commands, train)
    return parser


# Modules that add their own commands: each has register(commands, train_tasks), where
# `commands` is the top-level subparsers and `train_tasks` the subparsers of `rnnkit train`.
# Keep their top-level imports light (no torch): the parser is built on every call.
TASK_COMMANDS: tuple[str, ...] = ("rnnkit.tasks.seq2seq", "rnnkit.tasks.charlm", "rnnkit.serve.command")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    # argparse stops filling a nargs="*" positional at the first option: gather texts given after options
    if extras and hasattr(args, "texts") and all(e == "-" or not e.startswith("-") for e in extras):
        args.texts = [*args.texts, *extras]
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        if args.command == "train":
            _join_training_processes(args)
        return args.func(args)
    except RnnkitError as exc:
        print(f"rnnkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rnnkit predict ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the file system said no: permissions, a full disk, a directory where a file goes
        print(f"rnnkit: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        failed_write = _safetensors_io_error(exc)
        if failed_write is None:
            raise
        print(f"rnnkit: error: {describe_os_error(failed_write)}", file=sys.stderr)
        return 1


def _join_training_processes(args) -> None:
    """Check --device, and under torchrun join the other processes before any data is read.

    Ranks other than 0 then run quietly: only rank 0 prints (errors still go to stderr).
    """
    from rnnkit.training import distributed

    engine, device = getattr(args, "engine", "torch"), getattr(args, "device", "cpu")
    if engine == "torch":
        distributed.resolve_device(device)  # a clear error now, not a torch traceback after loading the data
    elif device != "cpu":
        raise ConfigError("the numpy engine runs on the CPU; leave out --device or use --engine torch")
    if not distributed.setup(engine, device).is_main:
        args.quiet = True
        sys.stdout = open(os.devnull, "w")


def _safetensors_io_error(exc: Exception) -> OSError | None:
    """safetensors reports a failed write (e.g. a full disk) as SafetensorError("... (os error 28)")."""
    import re

    found = re.search(r"\(os error (\d+)\)", str(exc))
    if type(exc).__name__ != "SafetensorError" or not found:
        return None
    code = int(found.group(1))
    return OSError(code, os.strerror(code))


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


if __name__ == "__main__":
    sys.exit(main())

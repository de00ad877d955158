"""The `rnnkit` command line: the top floor, over `rnnkit.tasks` and `rnnkit.serve`.

    rnnkit train imdb --data PATH --out runs/imdb      train the sentiment model on IMDB
    rnnkit train charlm --text FILE --out runs/lm      a character language model on any text
    rnnkit train seq2seq --task dates --out runs/d     an encoder-decoder (translation)
    rnnkit train generate-review --data PATH --out D   a language model that writes a text of a label (one-to-many)
    rnnkit pretrain --text PATH... --out runs/wlm      a word language model on unlabelled text (= train wordlm)
    rnnkit demo                                        the whole path offline, in under a minute
    rnnkit evaluate BUNDLE [--data PATH | --text FILE] a bundle's metrics on held-out data
    rnnkit predict runs/imdb "What a film!"            label + probability (or - for stdin)
    rnnkit generate / translate / serve BUNDLE         the other tasks' operations, and the HTTP service
    rnnkit data imdb                                   download IMDB (checksum verified)
    rnnkit lab gradients|adding|negation|cells         the RNN lab: vanishing/exploding gradients, the adding problem,
                                                       a negation probe, one unit over a text
    rnnkit lab judge GENERATOR CLASSIFIER              how often a classifier agrees with a generator's labels

One module per task (`sentiment`, `classify`, `charlm`, `pretrain`, `seq2seq`, `condlm`) plus `serve`,
`data` and `lab`, each with `register(...)`; `common` holds the shared flags and checks. Nothing below
this package imports it. Errors a user can cause print one line ("rnnkit: error: ...") and exit non-zero.
Heavy imports (torch) happen inside the commands that need them.
"""

from __future__ import annotations

import argparse
import os
import sys

from rnnkit import __version__
from rnnkit.cli import charlm, classify, condlm, data, lab, predict, pretrain, sentiment, seq2seq, serve
from rnnkit.cli.common import describe_os_error, open_bundle
from rnnkit.errors import ConfigError, RnnkitError

# the task module whose `cmd_evaluate(model, args)` scores a bundle of that task
EVALUATORS = {"sentiment": sentiment, "classify": classify, "charlm": charlm, "wordlm": pretrain, "seq2seq": seq2seq}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnkit", description="Recurrent neural networks: train, evaluate, predict.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train = commands.add_parser("train", help="train a model").add_subparsers(dest="task", metavar="TASK", required=True)
    classify.register(commands, train)
    sentiment.register(commands, train)
    charlm.register(commands, train)
    pretrain.register(commands, train)
    seq2seq.register(commands, train)
    condlm.register(commands, train)
    predict.register(commands)
    _add_evaluate_command(commands)
    serve.register(commands)
    data.register(commands)
    lab.register(commands)
    return parser


def _add_evaluate_command(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="score a bundle on held-out data: classify per-class report and "
                                   "worst mistakes; sentiment accuracy, loss and confusion matrix; charlm nats and bits per character; wordlm perplexity; seq2seq exact match and BLEU")
    evaluate.add_argument("bundle", help="bundle directory written by rnnkit train")
    evaluate.add_argument("--data", help="classify: labelled texts (as in training); sentiment: IMDB tarball or "
                          "folder (default: $RNNKIT_IMDB, then the download location); seq2seq: a TSV file of "
                          "source<TAB>target pairs")
    evaluate.add_argument("--text", help="charlm bundles: UTF-8 text to score in nats and bits per character; "
                          "wordlm bundles: a text file, folder or aclImdb source to score in perplexity "
                          "(default: the validation part of the training text)")
    evaluate.add_argument("--split", choices=("test", "train"), default="test", help="sentiment: the IMDB split")
    evaluate.add_argument("--beam", type=int, default=1, help="seq2seq: beam width (default %(default)s: greedy)")
    evaluate.add_argument("--worst", type=int, default=10, help="classify: the worst mistakes listed (default %(default)s)")
    evaluate.add_argument("--plot", metavar="PNG", help="classify: save the confusion matrix as a PNG")
    evaluate.add_argument("--engine", choices=("numpy", "torch"), default="numpy")
    evaluate.add_argument("--json", action="store_true", help="print metrics as one JSON object")
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)


def train_from_python(task: str, options: dict) -> None:
    """Run `rnnkit train TASK` with `options` as its flags (underscores for dashes: batch_size=32); the
    defaults, checks and messages are the command line's. Raises RnnkitError for unknown or missing options."""
    import difflib

    tasks = _subparsers(_subparsers(build_parser())["train"])
    if task not in tasks:
        raise ConfigError(f"unknown task {task!r}; rnnkit.train knows {', '.join(sorted(tasks))}")
    actions = [a for a in tasks[task]._actions if a.dest != "help"]
    defaults = {**{a.dest: a.default for a in actions}, **tasks[task]._defaults}  # set_defaults wins, as in argparse
    args = argparse.Namespace(**{"command": "train", "task": task, **defaults})  # seq2seq's --task is its own
    known = {a.dest for a in actions} - {"func"}
    for name, value in options.items():
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else f" (options: {', '.join(sorted(known))})"
            raise ConfigError(f"rnnkit.train({task!r}) has no option {name!r}{hint}")
        setattr(args, name, str(value) if isinstance(value, os.PathLike) else value)
    missing = [a.dest for a in actions if a.required and getattr(args, a.dest) is None]
    missing += [" or ".join(a.dest for a in group._group_actions) for group in tasks[task]._mutually_exclusive_groups
                if group.required and all(getattr(args, a.dest) is None for a in group._group_actions)]
    if missing:
        raise ConfigError(f"rnnkit.train({task!r}) needs {', '.join(f'{m}=...' for m in missing)}")
    _join_training_processes(args)
    args.func(args)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def cmd_evaluate(args) -> int:
    model = open_bundle(args.bundle, "evaluate", args.engine)
    return EVALUATORS[model.task].cmd_evaluate(model, args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    # argparse stops filling a nargs="*" positional at the first option: gather texts given after options
    if extras and hasattr(args, "texts") and all(e == "-" or not e.startswith("-") for e in extras):
        args.texts = [*args.texts, *extras]
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        if args.command in ("train", "pretrain"):
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


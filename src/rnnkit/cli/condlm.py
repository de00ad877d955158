"""`rnnkit train generate-review`: a conditional language model (one-to-many) on labelled texts; `rnnkit generate
BUNDLE --label L` (cli/charlm.py) writes with it and `rnnkit lab judge` (cli/lab.py) scores it."""

from __future__ import annotations

import sys
import time

from rnnkit.cli.common import (add_train_arguments, add_word_lm_arguments, check_output_dir, print_trained, run_options,
                               train_config_from)
from rnnkit.config import ModelConfig
from rnnkit.errors import ConfigError

DESCRIPTION = (
    "Train a word language model conditioned on a label (one-to-many: the label as a one-hot vector -> tanh(Dense) "
    "-> the initial state of every layer; the label vector again beside every word's embedding (--condition "
    "every-step, the default) -> stacked rnn|lstm|gru -> softmax over the next word) on labelled texts: the "
    "aclImdb tarball or folder (its train/pos and train/neg reviews with their labels positive and negative; test/ and unsup/ are never read), or the labelled files classify reads "
    "(CSV/TSV, JSON lines, a folder of class subfolders). Then `rnnkit generate BUNDLE --label positive` writes a "
    "text of that label and `rnnkit lab judge BUNDLE CLASSIFIER` measures how often a classifier agrees. A seeded "
    "share of the texts validates (perplexity per epoch); resumable (--resume).")


def register(commands, train_tasks) -> None:
    """Add `rnnkit train generate-review`."""
    from rnnkit.tasks.condlm.settings import DEFAULTS as d

    cmd = train_tasks.add_parser("generate-review", help="a language model that writes a text of a given label "
                                 "(e.g. a positive or negative IMDB review)", description=DESCRIPTION)
    cmd.add_argument("--data", required=True, metavar="PATH",
                     help="aclImdb_v1.tar.gz or an aclImdb/ folder (train split), or labelled texts as classify "
                          "reads them: .csv/.tsv, .jsonl, or a folder of class subfolders")
    cmd.add_argument("--out", required=True, help="bundle directory")
    data = cmd.add_argument_group("data")
    data.add_argument("--text-field", help="the text column or key (default: found by name: text, review, ...)")
    data.add_argument("--label-field", help="the label column or key (default: found by name: label, class, ...)")
    data.add_argument("--max-len", type=int, default=d["max_len"],
                      help="words of each text trained on, its first ones (default %(default)s)")
    data.add_argument("--vocab-size", type=int, default=d["vocab_size"],
                      help="most frequent training words kept, <pad> <unk> <eos> included (default %(default)s)")
    model = cmd.add_argument_group("model")
    add_word_lm_arguments(cmd, model, d)
    model.add_argument("--condition", choices=("every-step", "initial"), default="every-step",
                       type=lambda text: text.replace("_", "-"),  # every_step too, as ModelConfig spells it
                       help="how the label enters: every-step (it sets the initial state and is read again beside "
                            "every word, so it does not fade as the text goes on) or initial (the initial state "
                            "only, as bundles before this option) (default %(default)s)")
    add_train_arguments(cmd, epochs=d["epochs"], batch_size=d["batch_size"], lr=d["lr"], lr_decay=d["lr_decay"],
                        clip_norm=d["clip_norm"], patience=d["patience"])
    cmd.set_defaults(func=cmd_train, val_fraction=d["val_fraction"])



def read_data(path: str, text_field: str | None, label_field: str | None, progress: bool):
    """The labelled texts at `path`: IMDB's train split for an aclImdb source, else `read_labelled`."""
    from pathlib import Path

    from rnnkit.data.imdb import is_imdb_source
    from rnnkit.data.labelled import read_labelled
    from rnnkit.errors import InputError

    if Path(path).exists() and is_imdb_source(Path(path)):
        if text_field or label_field:
            raise InputError("--text-field and --label-field name the columns of a labelled file; aclImdb's "
                             "reviews are files in pos/ and neg/ folders: leave them out")
        from rnnkit.tasks.classify.imdb import imdb_split

        return imdb_split(path, "train")
    return read_labelled(path, text_field=text_field, label_field=label_field, progress=progress)


def cmd_train(args) -> int:
    from rnnkit.tasks.condlm import CondLMSettings, train

    out = check_output_dir(args.out)
    if not 1 <= args.layers <= 3:
        raise ConfigError(f"--layers must be 1, 2 or 3; got {args.layers}")
    train_config = train_config_from(args)  # every option is checked before the texts are read
    condition = args.condition.replace("-", "_")  # every-step -> every_step, as ModelConfig.condition says it
    CondLMSettings(labels=("a", "b"), max_len=args.max_len, vocab_size=args.vocab_size, softmax=args.softmax,
                   tie=args.tie, cutoffs=args.cutoffs, precision=args.precision, condition=condition)
    model_config = ModelConfig(vocab_size=1, output_size=1, cell=args.cell, num_layers=args.layers,
                               hidden_size=args.hidden, embedding_dim=args.embedding_dim, dropout=args.dropout,
                               architecture="many_to_many")
    data = read_data(str(args.data), args.text_field, args.label_field, progress=not args.quiet and sys.stderr.isatty())
    labels = tuple(data.classes)
    settings = CondLMSettings(labels=labels, max_len=args.max_len, vocab_size=args.vocab_size, softmax=args.softmax,
                              tie=args.tie, cutoffs=args.cutoffs, precision=args.precision, data=str(args.data),
                              text_field=data.text_field, label_field=data.label_field, condition=condition)
    if not args.quiet:
        print(f"read {data.source}: {len(data):,} texts", file=sys.stderr, flush=True)
    started = time.perf_counter()
    best = train(data, model_config, train_config, settings, out, **run_options(args))
    print_trained(f"best validation perplexity {best['perplexity']:.2f} ({best['loss']:.4f} nats/token)",
                  (time.perf_counter() - started) / 60, out,
                  f"rnnkit generate {out} --label {labels[-1]} --length 50",
                  f"rnnkit lab judge {out} CLASSIFIER_BUNDLE --per-label 200")
    return 0

"""`rnnkit train classify` (a user's own labelled texts), and `rnnkit evaluate` for classify bundles."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

from rnnkit.cli.common import (add_model_arguments, add_model_choice, add_train_arguments, check_new_output_file,
                               check_output_dir, model_config_from, print_trained, run_options, train_config_from)
from rnnkit.errors import InputError

EMBEDDING_DIM = 128  # without --embedding-dim and --embeddings


def register(commands, train_tasks) -> None:
    cmd = train_tasks.add_parser(
        "classify", help="text classification on your own labelled texts (CSV/TSV, JSON lines, class folders)",
        description="Train embedding -> recurrent layers -> softmax (or sigmoid) on labelled texts: a CSV/TSV "
                    "file, a JSON lines file, or a folder with one subfolder per class. Any labels; two classes "
                    "get a sigmoid, more a softmax, --multi-label one sigmoid per tag. A stratified validation "
                    "split picks the best epoch; the bundle gets a report, a confusion matrix and a model card.")
    data = cmd.add_argument_group("data")
    data.add_argument("--data", help="labelled texts: .csv/.tsv (columns found by name), .jsonl, or a folder of "
                                     "class subfolders")
    data.add_argument("--train", help="the training file, when you have your own splits (with --valid, --test)")
    data.add_argument("--valid", help="validation file (default: a stratified share of --data/--train)")
    data.add_argument("--test", help="test file, read only after training, for the report and model card")
    data.add_argument("--text-field", help="the text column or key (default: found by name: text, review, ...)")
    data.add_argument("--label-field", help="the label column or key (default: found by name: label, class, ...)")
    data.add_argument("--multi-label", metavar="SEP", help="each text has tags, separated by SEP in the label field "
                                                           "(e.g. '|'); one sigmoid per tag")
    data.add_argument("--class-weights", choices=("none", "balanced"), default="none",
                      help="balanced: rare classes count more in the loss (default %(default)s)")
    cmd.add_argument("--out", required=True, help="bundle directory")
    text = cmd.add_argument_group("text")
    text.add_argument("--vocab-size", type=int, default=30000,
                      help="words in the vocabulary incl. <pad> and <unk>; 0 = every training word (default %(default)s)")
    text.add_argument("--maxlen", type=int, default=400, help="keep at most this many tokens per text (default %(default)s)")
    text.add_argument("--truncating", choices=("pre", "post"), default="pre",
                      help="drop tokens from the start (pre: keep the ending) or the end (default %(default)s)")
    text.add_argument("--padding", choices=("pre", "post"), default="post",
                      help="post: length-bucketed, masked batches (fast); pre: Keras-style fixed maxlen")
    text.add_argument("--embeddings", metavar="FILE",
                      help="pretrained word vectors to start the embedding from: word2vec/GloVe/fastText text format "
                           "(.txt/.vec, or gzipped .gz); the embedding size follows the file, and the share of the "
                           "vocabulary found is printed and recorded in the bundle")
    text.add_argument("--init", metavar="BUNDLE",
                      help="start from a trained encoder: the embedding, recurrent layers and vocabulary of a word "
                           "language model (rnnkit pretrain) or another classifier; the head starts fresh, and the "
                           "encoder's shape (cell, layers, sizes) replaces the model flags")
    text.add_argument("--freeze-embeddings", action="store_true",
                      help="with --embeddings: keep the embedding fixed while the rest learns (default: fine-tune it)")
    add_model_arguments(cmd)
    add_model_choice(cmd)
    for action in cmd._actions:  # no fixed default: --embeddings sets the size
        if action.dest == "embedding_dim":
            action.default = None
            action.help = f"embedding size (default {EMBEDDING_DIM}, or the size of the --embeddings vectors)"
    add_train_arguments(cmd, epochs=10, patience=3)
    cmd.set_defaults(func=cmd_train_classify)


def read_data(args) -> dict:
    """{"train", "valid", "test"} LabelledTexts (valid/test may be None); exactly one of --data / --train."""
    from rnnkit.data.labelled import read_labelled, read_splits

    if bool(args.data) == bool(args.train):
        raise InputError("give the labelled texts with --data FILE (or folder), or your own splits with "
                         "--train FILE [--valid FILE] [--test FILE]")
    options = {"text_field": args.text_field, "label_field": args.label_field, "multi_label": args.multi_label,
               "progress": not args.quiet and sys.stderr.isatty()}
    if args.data:
        if args.valid:
            raise InputError("--valid goes with --train; with --data the validation split is carved from it")
        return {"train": read_labelled(args.data, **options), "valid": None,
                "test": read_labelled(args.test, **options) if args.test else None}
    splits = read_splits(args.train, args.valid, args.test, **options)
    return {"train": splits["train"], "valid": splits.get("valid"), "test": splits.get("test")}


def describe_data(data) -> None:
    """Class counts, skipped rows and warnings, before any training."""
    from rnnkit.data.labelled import class_counts, imbalance_warning, label_warnings

    train = data["train"]
    counts = class_counts(train.labels)
    shown = ", ".join(f"{label} {n:,}" for label, n in list(counts.items())[:20])
    more = f" (and {len(counts) - 20} more)" if len(counts) > 20 else ""
    print(f"{train.source}: {len(train):,} texts, {len(counts)} {'tags' if train.multi_label else 'classes'}: "
          f"{shown}{more}", file=sys.stderr)
    if train.skipped:
        print("rnnkit: note: rows left out: " + ", ".join(f"{why} {n}" for why, n in train.skipped.items()),
              file=sys.stderr)
    for warning in [imbalance_warning(counts), *label_warnings(train.labels)]:
        if warning:
            print(f"rnnkit: warning: {warning}", file=sys.stderr)


def cmd_train_classify(args) -> int:
    from rnnkit.tasks.classify import ClassifySettings, train

    out = check_output_dir(args.out)
    train_config = train_config_from(args)  # every option is checked before any data is read
    init = pretrained_encoder(args)
    embeddings, embedding_dim = pretrained_embeddings(args)
    data = read_data(args)
    labels = sorted({tag for split in data.values() if split is not None for label in split.labels
                     for tag in (label if isinstance(label, tuple) else (label,))})
    settings = ClassifySettings(labels=tuple(labels), multi_label=data["train"].multi_label, maxlen=args.maxlen,
                                truncating=args.truncating, padding=args.padding, vocab_size=args.vocab_size or None,
                                text_field=data["train"].text_field, label_field=data["train"].label_field,
                                label_separator=args.multi_label, class_weights=args.class_weights)
    if not args.quiet:
        describe_data(data)
    model_config = model_config_from(argparse.Namespace(**{**vars(args), "embedding_dim": embedding_dim}), vocab_size=1)
    started = time.perf_counter()
    command = "rnnkit " + shlex.join(sys.argv[1:]) if sys.argv[0].endswith("rnnkit") else None
    result = train(data["train"], model_config, train_config, settings, out, valid=data["valid"], test=data["test"],
                   command=command, embeddings=embeddings, init=init, **run_options(args))
    best, report = result["best"], result["report"]
    print_trained(f"best validation accuracy {best['accuracy']:.4f}, macro-F1 {best['macro_f1']:.4f}, loss "
                  f"{best['loss']:.4f}; {report['split']} macro-F1 {report['macro_f1']:.4f}",
                  (time.perf_counter() - started) / 60, out,
                  f"rnnkit evaluate {out} --data FILE", f'rnnkit predict {out} "a text" --top 3')
    return 0


def pretrained_encoder(args):
    """The PretrainedEncoder of --init BUNDLE (loaded and checked now, before any data is read), or None."""
    from rnnkit.tasks.classify.pretrained import PretrainedEncoder

    if not getattr(args, "init", None):
        return None
    if getattr(args, "model", "rnn") == "bow":
        raise InputError("--init starts a recurrent classifier from a trained encoder, and --model bow has no "
                         "recurrent layers; leave out --init (--embeddings FILE starts its embedding from word vectors)")
    if getattr(args, "embeddings", None):
        raise InputError("--init starts the embedding from the pretrained bundle; leave out --embeddings")
    return PretrainedEncoder.load(args.init)


def pretrained_embeddings(args):
    """(PretrainedEmbeddings or None, the embedding size): --embeddings FILE is looked at now (it is a vector
    file, and of the size --embedding-dim asks for), before any data is read."""
    from rnnkit.tasks.classify import PretrainedEmbeddings

    if not args.embeddings:
        if args.freeze_embeddings:
            raise InputError("--freeze-embeddings keeps pretrained vectors fixed; give them with --embeddings FILE, "
                             "or leave it out")
        return None, args.embedding_dim or EMBEDDING_DIM
    from rnnkit.data.embeddings import check_dimension

    dim = check_dimension(args.embeddings, args.embedding_dim)
    return PretrainedEmbeddings(args.embeddings, args.freeze_embeddings, args.embedding_dim), dim


def cmd_evaluate(model, args) -> int:
    """`rnnkit evaluate BUNDLE --data FILE [--plot PNG] [--worst N]` for classify bundles."""
    from rnnkit.data.labelled import read_labelled
    from rnnkit.metrics import format_report, plot_confusion_matrix

    s = model.settings
    if not args.data and s.dataset != "imdb":
        raise InputError("give held-out labelled texts with --data FILE (the same format and columns as in training)")
    if args.plot:
        check_new_output_file(args.plot, "--plot")
    if s.dataset == "imdb":  # the preset: the aclImdb split (--data, else $RNNKIT_IMDB or the download location)
        from rnnkit.tasks.classify.imdb import imdb_split

        data = imdb_split(args.data, args.split)
    else:
        data = read_labelled(args.data, text_field=s.text_field, label_field=s.label_field,
                             multi_label=s.label_separator, progress=not args.quiet and sys.stderr.isatty())
    result = model.evaluate(data.texts, data.labels, worst=args.worst)
    if args.plot and not s.multi_label:
        plot_confusion_matrix(result["report"]["confusion_matrix"], list(model.labels), args.plot)
    result.update({"data": data.source, "engine": model.engine, "bundle": str(args.bundle)})
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"{data.source}: {result['count']:,} texts   accuracy {result['accuracy']:.4f}   macro-F1 "
          f"{result['macro_f1']:.4f}   loss {result['loss']:.4f}")
    print(format_report(result["report"]))
    if result["worst"]:
        print(f"\nworst {len(result['worst'])} (highest loss first):")
        for mistake in result["worst"]:
            print(f"  true {mistake['label']!s:>12}  predicted {mistake['predicted']!s:>12} ({mistake['score']:.2f})"
                  f"  {mistake['text'][:100]!r}")
    if result["unreadable"]:
        print(f"rnnkit: note: {result['unreadable']} text(s) had no word the model knows and were left out",
              file=sys.stderr)
    if args.plot:
        print(f"confusion matrix saved to {args.plot}", file=sys.stderr)
    return 0

"""`rnnkit pretrain` (also `rnnkit train wordlm`): a word language model on unlabelled text; `rnnkit evaluate`
for word-LM bundles. `rnnkit generate` (cli/charlm.py) writes with either kind of language model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rnnkit.cli.common import (add_train_arguments, add_word_lm_arguments, check_output_dir, print_trained, run_options,
                               train_config_from)
from rnnkit.config import ModelConfig
from rnnkit.errors import ConfigError, InputError
from rnnkit.tasks.wordlm.settings import DEFAULTS

DESCRIPTION = (
    "Train a word-level language model (embedding -> stacked rnn|lstm|gru -> softmax over the next word) on "
    "unlabelled text: the aclImdb tarball or folder (train/pos, train/neg, train/unsup; test/ is never read), "
    "folders of .txt files (one document each), or text files (blank lines separate documents). Words are the "
    "classifier's tokens and its embedding and recurrent tensors are named as a classifier's, so a classifier "
    "can start from them. A seeded share of the documents validates (perplexity per epoch); truncated BPTT with the state "
    "carried between chunks; resumable (--resume).")


def register(commands, train_tasks) -> None:
    """Add `rnnkit pretrain` and its twin `rnnkit train wordlm` (rnnkit.train("wordlm", ...) runs the latter)."""
    for parser in (commands.add_parser("pretrain", help="word language model on unlabelled text (e.g. IMDB's "
                                                         "75,000 training reviews) for classifiers to start from",
                                       description=DESCRIPTION),
                   train_tasks.add_parser("wordlm", help="word language model on unlabelled text (= rnnkit pretrain)",
                                          description=DESCRIPTION)):
        _add_arguments(parser)


def _add_arguments(cmd: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    cmd.add_argument("--text", required=True, nargs="+", metavar="PATH",
                     help="aclImdb_v1.tar.gz or an aclImdb/ folder, folders of .txt files, or text files")
    cmd.add_argument("--out", required=True, help="bundle directory")
    data = cmd.add_argument_group("data")
    data.add_argument("--vocab-size", type=int, default=d["vocab_size"],
                      help="most frequent training words kept, <pad> <unk> <eos> included (default %(default)s)")
    data.add_argument("--seq-len", type=int, default=d["seq_len"],
                      help="tokens per chunk of truncated BPTT (default %(default)s)")
    data.add_argument("--documents", choices=("paragraph", "line", "file"), default="paragraph",
                      help="how a text file splits into documents: blank lines, each line, or the whole file "
                           "(default %(default)s; a folder's .txt files are one document each)")
    data.add_argument("--max-tokens", type=int,
                      help="read only the first N tokens, in reading order (a quick run; default: all)")
    model = cmd.add_argument_group("model")
    add_word_lm_arguments(cmd, model, d)
    cmd.add_argument("--sample-every", type=int, default=d["sample_every"],
                     help="print a short sample every N steps, besides each epoch end; 0 = epoch ends only "
                          "(default %(default)s)")
    add_train_arguments(cmd, epochs=d["epochs"], batch_size=d["batch_size"], lr=d["lr"], clip_norm=d["clip_norm"],
                        patience=d["patience"])
    cmd.set_defaults(func=cmd_pretrain, lr_decay=d["lr_decay"], val_fraction=d["val_fraction"])



def cmd_pretrain(args) -> int:
    from rnnkit.data.documents import read_documents
    from rnnkit.tasks.wordlm import WordLMSettings, train

    out = check_output_dir(args.out)
    paths = [args.text] if isinstance(args.text, str) else [str(path) for path in args.text]  # rnnkit.train(text="a.txt")
    if not 1 <= args.layers <= 3:
        raise ConfigError(f"--layers must be 1, 2 or 3; got {args.layers}")
    settings = WordLMSettings(seq_len=args.seq_len, vocab_size=args.vocab_size, documents=args.documents,
                              max_tokens=args.max_tokens, softmax=args.softmax, tie=args.tie, cutoffs=args.cutoffs,
                              sample_every=args.sample_every, precision=args.precision,
                              text=paths)
    train_config = train_config_from(args)  # validate every option before reading the text
    model_config = ModelConfig(vocab_size=1, output_size=1, cell=args.cell, num_layers=args.layers,
                               hidden_size=args.hidden, embedding_dim=args.embedding_dim, dropout=args.dropout,
                               architecture="many_to_many")
    documents = read_documents(paths, args.documents, args.max_tokens, progress=not args.quiet)
    print(f"read {documents.summary()}{_never_test(documents)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    best = train(documents, model_config, train_config, settings, out, **run_options(args))
    print_trained(f"best validation perplexity {best['perplexity']:.2f} ({best['loss']:.4f} nats/token)",
                  (time.perf_counter() - started) / 60, out,
                  f'rnnkit generate {out} --prime "This movie" --length 50', f"rnnkit evaluate {out} --text FILE")
    return 0


def _never_test(documents) -> str:
    return " (aclImdb's test/ never read)" if any(name.startswith("train/") for name in documents.read) else ""


def cmd_evaluate(model, args) -> int:
    """`rnnkit evaluate BUNDLE [--text PATH]` for word-LM bundles: perplexity of a text (default: the validation
    documents of the training text, read and split again as in training)."""
    if args.text:
        name, ids = args.text, _text_ids(model, [args.text], None, progress=not args.quiet)
    else:
        name, ids = _validation_ids(model, progress=not args.quiet)
    metrics = model.evaluate_ids(ids)
    metrics.update({"text": name, "engine": model.engine, "bundle": str(args.bundle)})
    if args.json:
        print(json.dumps(metrics, ensure_ascii=False))
        return 0
    print(f"{name}: {metrics['tokens']:,} tokens scored   loss {metrics['loss']:.4f} nats/token   "
          f"perplexity {metrics['perplexity']:.2f}")
    if metrics["unknown"]:
        print(f"rnnkit: note: {metrics['unknown']:,} of the words ({metrics['unknown'] / metrics['tokens']:.1%}) are "
              "not in the model's vocabulary; they were scored as <unk>", file=sys.stderr)
    return 0


def _text_ids(model, paths, max_tokens, progress: bool):
    """The documents of `paths` as one stream of the model's word ids, each document followed by <eos>."""
    import numpy as np

    from rnnkit.data.documents import read_documents
    from rnnkit.tasks.wordlm.data import EOS_ID, join

    documents = read_documents(paths, model.settings.documents, max_tokens, progress=progress)
    lookup = np.asarray(model.vocab.encode(documents.words), dtype=np.int32)
    return join([lookup[d] for d in documents.docs], EOS_ID)


def _validation_ids(model, progress: bool):
    """The bundle's validation documents, found again: its text read and split as training did."""
    from rnnkit.data.documents import read_documents
    from rnnkit.tasks.wordlm.data import prepare

    settings, train = model.settings, model.bundle.train
    sources = settings.text or []
    missing = [s for s in sources if not Path(s).exists()]
    if not sources or missing:
        raise InputError("give the text to score with --text PATH (the bundle's training text "
                         f"{', '.join(missing or sources) or '(not recorded)'} is not there to take the validation "
                         "documents from)")
    fraction, seed = train.get("validation_fraction"), train.get("seed")
    if (isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1
            or not isinstance(seed, int) or isinstance(seed, bool)):
        raise InputError("the bundle does not record its validation fraction and seed, so its validation documents "
                         "are unknown; give the text to score with --text PATH")
    documents = read_documents(sources, settings.documents, settings.max_tokens, progress=progress)
    corpus = prepare(documents, settings.vocab_size, fraction, seed)
    if list(corpus.vocab.tokens) != list(model.vocab.tokens):
        raise InputError(f"{', '.join(sources)} no longer holds the text this model was trained on (its vocabulary "
                         "differs); give the text to score with --text PATH")
    return f"{', '.join(sources)} (validation documents)", corpus.val_ids

"""`rnnkit train seq2seq`, `rnnkit translate`, and `rnnkit evaluate` for seq2seq bundles."""

from __future__ import annotations

import argparse
import json
import sys
import time

from rnnkit.cli.common import (add_train_arguments, answer_lines, check_new_output_file, check_output_dir, checked_utf8,
                               open_bundle, print_trained, run_options, stdin_bytes, train_config_from)
from rnnkit.config import ModelConfig
from rnnkit.data.pairs import read_pairs
from rnnkit.errors import InputError
from rnnkit.tasks import load_predictor
from rnnkit.tasks.seq2seq.data import Splits, generated_splits, pair_file_splits
from rnnkit.tasks.seq2seq.settings import Seq2SeqSettings

def register(commands, train_tasks) -> None:
    """Add `rnnkit train seq2seq` and `rnnkit translate` to the CLI."""
    cmd = train_tasks.add_parser(
        "seq2seq", help="encoder-decoder on a TSV pair file or a built-in task (dates, reverse)",
        description="Train an encoder-decoder (optionally with attention); report exact match and BLEU "
                    "on a held-out split.")
    data = cmd.add_mutually_exclusive_group(required=True)
    data.add_argument("--pairs", help="UTF-8 TSV file: source<TAB>target per line (more columns are ignored)")
    data.add_argument("--task", choices=("dates", "reverse"), help="built-in generated task (no download)")
    cmd.add_argument("--out", required=True, help="bundle directory")
    text = cmd.add_argument_group("data")
    text.add_argument("--source-level", choices=("word", "char"), help="tokens (default: word for --pairs, char for --task)")
    text.add_argument("--target-level", choices=("word", "char"), help="(default: as --source-level)")
    text.add_argument("--no-lowercase", action="store_true", help="keep case (default: lower-case both sides)")
    text.add_argument("--max-source-len", type=int, default=50, help="drop training pairs with a longer source, in tokens; "
                      "translate refuses longer input unless --truncate (default %(default)s)")
    text.add_argument("--max-target-len", type=int, default=50, help="drop training pairs with a longer target; "
                      "also the default output limit (default %(default)s)")
    text.add_argument("--vocab-size", type=int, default=0, help="tokens per vocabulary incl. 4 reserved; 0 = all (default)")
    text.add_argument("--min-freq", type=int, default=1, help="keep tokens seen at least this often (default %(default)s)")
    text.add_argument("--heldout", type=float, default=0.1, help="share of distinct sources held out for the test "
                      "report (--pairs; default %(default)s)")
    text.add_argument("--train-size", type=int, default=50000, help="generated training pairs (--task; default %(default)s)")
    text.add_argument("--test-size", type=int, default=2000, help="generated held-out pairs (--task; default %(default)s)")
    model = cmd.add_argument_group("model")
    model.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="gru", help="(default %(default)s)")
    model.add_argument("--layers", type=int, default=1, help="encoder and decoder layers (default %(default)s)")
    model.add_argument("--embedding-dim", type=int, default=64, help="(default %(default)s)")
    model.add_argument("--hidden", type=int, default=128, help="encoder units per direction; the decoder has "
                       "this x directions (default %(default)s)")
    model.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=True,
                       help="bidirectional encoder (default %(default)s)")
    model.add_argument("--dropout", type=float, default=0.1, help="(default %(default)s)")
    model.add_argument("--attention", nargs="?", const="luong", default="luong", choices=("none", "bahdanau", "luong"),
                       help="luong (multiplicative; also the bare flag), bahdanau (additive) or none (default %(default)s)")
    model.add_argument("--teacher-forcing", type=float, default=1.0,
                       help="probability of feeding the true previous token in training (default %(default)s)")
    add_train_arguments(cmd, epochs=10, batch_size=64, lr=2e-3, patience=3)
    cmd.set_defaults(func=cmd_train_seq2seq)

    tr = commands.add_parser("translate", help="translate text with a seq2seq bundle (greedy or beam search)")
    tr.add_argument("bundle", help="bundle directory written by rnnkit train seq2seq")
    tr.add_argument("texts", nargs="*", help='texts to translate; "-" reads one per line from stdin (JSON lines out)')
    tr.add_argument("--beam", type=int, default=1, help="beam width; 1 = greedy (default %(default)s)")
    tr.add_argument("--alpha", type=float, default=1.0, help="beam length normalisation: score = log P / length^alpha "
                    "(default %(default)s)")
    tr.add_argument("--max-len", type=int, help="most output tokens (default: the model's --max-target-len + 1)")
    tr.add_argument("--truncate", action="store_true", help="cut over-long input to the model's maximum instead of refusing it")
    tr.add_argument("--engine", choices=("numpy", "torch"), default="numpy", help="numpy needs no torch (default)")
    tr.add_argument("--plot-attention", metavar="PNG", help="save the attention weights of the (first) text as a PNG")
    tr.add_argument("--json", action="store_true", help="print one JSON object per text")
    tr.set_defaults(func=cmd_translate)


def settings_from(args) -> Seq2SeqSettings:
    default_level = "word" if args.pairs else "char"
    source_level = args.source_level or default_level
    return Seq2SeqSettings(dataset="pairs" if args.pairs else args.task, source_level=source_level,
                           target_level=args.target_level or source_level, lowercase=not args.no_lowercase,
                           max_source_len=args.max_source_len, max_target_len=args.max_target_len,
                           teacher_forcing=args.teacher_forcing)


def load_splits(args, seed: int, val_fraction: float) -> Splits:
    if args.pairs:
        return pair_file_splits(read_pairs(args.pairs), args.heldout, val_fraction, seed)
    val_size = max(1, int(round(args.train_size * val_fraction)))
    return generated_splits(args.task, args.train_size, val_size, args.test_size, seed)


def cmd_train_seq2seq(args) -> int:
    from rnnkit.data.pairs import group_references
    from rnnkit.tasks.seq2seq import build_vocabs, encode_split, train

    out = check_output_dir(args.out)
    settings = settings_from(args)  # validate every option before reading any data
    train_config = train_config_from(args)
    splits = load_splits(args, train_config.seed, train_config.validation_fraction)
    source, target = build_vocabs(splits.train, settings, args.vocab_size or None, args.min_freq)
    train_data, val_data = (encode_split(p, source, target, settings) for p in (splits.train, splits.val))
    model_config = ModelConfig(vocab_size=len(source), target_vocab_size=len(target), architecture="encoder_decoder",
                               cell=args.cell, num_layers=args.layers, embedding_dim=args.embedding_dim,
                               hidden_size=args.hidden, bidirectional=args.bidirectional, dropout=args.dropout,
                               attention=args.attention)
    extra = {"pairs": str(args.pairs) if args.pairs else None, "heldout": args.heldout}
    started = time.perf_counter()
    best = train(train_data, val_data, source, target, model_config, train_config, settings, out,
                 extra_settings=extra, **run_options(args))
    minutes = (time.perf_counter() - started) / 60
    model = load_predictor(out, engine=args.engine)
    sources, references = group_references([s for s, _ in splits.test], [t for _, t in splits.test])
    metrics = model.evaluate(sources, references)
    print(f"held-out test ({metrics['count']} sources, greedy): exact match {metrics['exact_match']:.4f}, "
          f"BLEU {metrics['bleu']:.2f}")
    print_trained(f"best validation: loss {best['loss']:.4f}, exact match {best['exact_match']:.4f}", minutes, out,
                  f'rnnkit translate {out} "{sources[0]}" [--beam 5]')
    return 0


def cmd_translate(args) -> int:
    model = open_bundle(args.bundle, "translate", args.engine)
    if args.plot_attention:
        check_new_output_file(args.plot_attention, "--plot-attention")
    options = {"beam": args.beam, "max_len": args.max_len, "alpha": args.alpha, "truncate": args.truncate}
    if args.texts == ["-"]:
        return answer_lines(stdin_bytes(), lambda text: model.translate([text], **options)[0], "translated")
    if not args.texts:
        raise InputError('give a text to translate, e.g. rnnkit translate BUNDLE "I am cold.", or - to read stdin')
    texts = [checked_utf8(t, "the text to translate") for t in args.texts]
    for number, (result, text) in enumerate(zip(model.translate(texts, **options), texts), start=1):
        if args.json:
            print(json.dumps({"text": text, **result}, ensure_ascii=False))
            continue
        print(result["translation"] + ("  (truncated input)" if result["truncated"] else ""))
        if result["unknown"]:
            print(f"rnnkit: note: {result['unknown']} of the {result['tokens']} tokens of text {number} are not in "
                  "the model's vocabulary (read as <unk>)", file=sys.stderr)
    if args.plot_attention:
        path = model.plot_attention(texts[0], args.plot_attention, beam=args.beam, truncate=args.truncate)
        print(f"attention weights saved to {path}", file=sys.stderr)
    return 0


def cmd_evaluate(model, args) -> int:
    """`rnnkit evaluate BUNDLE --data PAIRS.tsv [--beam N]` for seq2seq bundles: exact match and BLEU."""
    from rnnkit.data.pairs import group_references

    if not args.data:
        raise InputError("give the pairs to score with --data PAIRS.tsv (source<TAB>target per line), e.g. the "
                         "held-out sentences of your own data")
    pairs = read_pairs(args.data)
    sources, references = group_references([s for s, _ in pairs], [t for _, t in pairs])
    metrics = model.evaluate(sources, references, beam=args.beam)
    metrics.pop("hypotheses")
    metrics.update({"data": str(args.data), "engine": model.engine, "bundle": str(args.bundle)})
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(f"{args.data}: {metrics['count']} sources   exact match {metrics['exact_match']:.4f}   "
          f"BLEU {metrics['bleu']:.2f}   (beam {metrics['beam']})")
    return 0

"""`rnnkit train charlm`, `rnnkit generate` (character and word LMs), and `rnnkit evaluate` for character-LM
bundles."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rnnkit.cli.common import add_train_arguments, check_output_dir, checked_utf8, open_bundle, print_trained, run_options, train_config_from
from rnnkit.config import ModelConfig
from rnnkit.errors import ConfigError, InputError
from rnnkit.tasks.charlm.sampling import MAX_LENGTH
from rnnkit.tasks.charlm.settings import DEFAULTS, PRECISIONS

TRAINING_DEFAULTS = ("epochs", "batch_size", "lr", "lr_decay", "lr_schedule", "warmup", "weight_decay", "patience")


def register(commands, train_tasks) -> None:
    """Add `rnnkit train charlm` and `rnnkit generate` to the CLI (`rnnkit evaluate` reads charlm bundles too)."""
    _add_train_command(train_tasks)
    _add_generate_command(commands)


def _add_train_command(train_tasks) -> None:
    cmd = train_tasks.add_parser(
        "charlm", help="character-level language model on any UTF-8 text file",
        description="Train embedding -> stacked rnn|lstm|gru -> dense on the characters of a text (first 90% "
                    "trains, last 10% validates; truncated BPTT with the state carried between chunks). "
                    "By default AdamW with weight decay, and a cosine learning-rate schedule over --epochs "
                    "after a short warmup.")
    cmd.add_argument("--text", required=True, help="UTF-8 text file, e.g. ../shared/data/tinyshakespeare.txt")
    cmd.add_argument("--out", required=True, help="bundle directory")
    cmd.add_argument("--seq-len", type=int, default=DEFAULTS["seq_len"],
                     help="characters per chunk of truncated BPTT (default %(default)s)")
    cmd.add_argument("--precision", choices=PRECISIONS, default="auto",
                     help="training forward pass: auto = bf16 on CPUs with AMX-BF16 (about 2.4x faster) or "
                          "AVX512-BF16 (1.6x), else fp32; weights stay float32 (default %(default)s)")
    cmd.add_argument("--sample-every", type=int, default=500,
                     help="print a short sample every N steps, besides each epoch end; 0 = epoch ends only "
                          "(default %(default)s)")
    model = cmd.add_argument_group("model")
    model.add_argument("--cell", choices=("rnn", "lstm", "gru"), default=DEFAULTS["cell"],
                       help="(default %(default)s)")
    model.add_argument("--layers", type=int, default=DEFAULTS["layers"],
                       help="1..3 stacked layers (default %(default)s)")
    model.add_argument("--hidden", type=int, default=DEFAULTS["hidden"], help="hidden units (default %(default)s)")
    model.add_argument("--embedding-dim", type=int, default=DEFAULTS["embedding_dim"], help="(default %(default)s)")
    model.add_argument("--dropout", type=float, default=DEFAULTS["dropout"],
                       help="on embeddings, between layers and before the head (default %(default)s)")
    add_train_arguments(cmd, clip_norm=5.0, **{key: DEFAULTS[key] for key in TRAINING_DEFAULTS})
    cmd.set_defaults(func=cmd_train_charlm)


def _add_generate_command(commands) -> None:
    gen = commands.add_parser("generate", help="write text with a character-LM, word-LM or conditional-LM bundle "
                                               "(streams to stdout)")
    gen.add_argument("bundle", help="bundle directory written by rnnkit train charlm, rnnkit pretrain or "
                                    "rnnkit train generate-review")
    gen.add_argument("--label", help="conditional-LM bundles (rnnkit train generate-review): the label of the text "
                                     "to write, e.g. positive or negative")
    gen.add_argument("--prime", default="",
                     help="text the model reads first; printed, then continued (default: none)")
    gen.add_argument("--length", type=int,
                     help=f"characters (charlm) or words (word LM) to generate, 1..{MAX_LENGTH} "
                          "(default 500 characters, 50 words)")
    gen.add_argument("--temperature", type=float, default=0.8,
                     help="> 0; lower is safer and more repetitive, higher more varied (default %(default)s)")
    gen.add_argument("--top-k", type=int, help="sample only among the k most likely characters or words (default: all)")
    gen.add_argument("--seed", type=int, help="same seed, same text, on either engine (default: random, printed)")
    gen.add_argument("--engine", choices=("numpy", "torch"), default="numpy", help="numpy needs no torch (default)")
    gen.set_defaults(func=cmd_generate)


def cmd_train_charlm(args) -> int:
    from rnnkit.data.text import read_text
    from rnnkit.tasks.charlm import CharLMSettings, train

    out = check_output_dir(args.out)
    if not 1 <= args.layers <= 3:
        raise ConfigError(f"--layers must be 1, 2 or 3; got {args.layers}")
    settings = CharLMSettings(seq_len=args.seq_len, sample_every=args.sample_every, text=str(args.text),
                              precision=args.precision)
    train_config = train_config_from(args)  # validate every option before reading the text
    model_config = ModelConfig(vocab_size=1, output_size=1, cell=args.cell, num_layers=args.layers,
                               hidden_size=args.hidden, embedding_dim=args.embedding_dim, dropout=args.dropout,
                               architecture="many_to_many")
    text = read_text(args.text)
    started = time.perf_counter()
    best = train(text, model_config, train_config, settings, out, **run_options(args))
    print_trained(f"best validation loss {best['loss']:.4f} nats/char ({best['bpc']:.4f} bits/char), "
                  f"next-character accuracy {best['accuracy']:.4f}", (time.perf_counter() - started) / 60, out,
                  f'rnnkit generate {out} --prime "..." --length 500 --temperature 0.8')
    return 0


def cmd_generate(args) -> int:
    import secrets

    from rnnkit.tasks.charlm import one_thread

    model = open_bundle(args.bundle, "generate", args.engine)
    prime = checked_utf8(args.prime, "the --prime text")
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    length = args.length if args.length is not None else (500 if model.task == "charlm" else 50)
    if model.task == "condlm":  # the label first: without it there is nothing to write
        pieces = model.stream(args.label, prime, length, args.temperature, args.top_k, seed)
    elif args.label is not None:
        raise InputError(f"--label chooses what a conditional LM (rnnkit train generate-review) writes; "
                         f"{args.bundle} holds a {model.task} model: leave --label out")
    else:
        pieces = model.stream(prime, length, args.temperature, args.top_k, seed)  # checks every option first
    if args.seed is None:
        print(f"rnnkit: seed {seed} (pass --seed {seed} to get this text again)", file=sys.stderr)
    if model.task in ("wordlm", "condlm") and (unknown := model.unknown_words(prime)):
        print(f"rnnkit: note: {len(unknown)} word(s) of the prime are not in the model's vocabulary and are read "
              f"as <unk>: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}", file=sys.stderr)
    out = sys.stdout
    out.write(prime)
    with one_thread():
        for piece in pieces:
            out.write(piece)
            out.flush()
    out.write("\n")
    return 0


def cmd_evaluate(model, args) -> int:
    """`rnnkit evaluate BUNDLE [--text FILE]` for charlm bundles (default: the training text's validation part)."""
    from rnnkit.data.text import read_text, split_text

    if args.text:
        name, text = args.text, read_text(args.text)
    else:
        source = model.bundle.settings.get("text")
        if not source or not Path(source).is_file():
            raise InputError("give the text to score with --text FILE (the bundle's training text "
                             f"{source!r} is not there to take the validation part from)")
        fraction = model.bundle.train.get("validation_fraction", 0.1)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise InputError(f"the bundle's validation_fraction {fraction!r} is not a fraction, so its validation "
                             "part is unknown; give the text to score with --text FILE")
        name, text = f"{source} (validation part)", split_text(read_text(source), fraction)[1]
    metrics = model.evaluate(text)
    metrics.update({"text": name, "engine": model.engine, "bundle": str(args.bundle)})
    if args.json:
        print(json.dumps(metrics, ensure_ascii=False))
        return 0
    print(f"{name}: {metrics['chars']:,} characters scored   loss {metrics['loss']:.4f} nats/char   "
          f"{metrics['bpc']:.4f} bits/char   next-character accuracy {metrics['accuracy']:.4f}")
    if metrics["unknown"]:
        print(f"rnnkit: note: {metrics['unknown']} characters of the text are not in the model's vocabulary; "
              "they were read as <unk> and not scored", file=sys.stderr)
    return 0

"""`rnnkit lab gradients|adding|negation|cells|judge`: the RNN lab's experiments (`rnnkit.lab`).

gradients and adding train on the numpy engine and write into --out (a new or
empty directory; --overwrite replaces what an earlier run of the same
experiment wrote there, and nothing else) a PNG, a JSON of the numbers and the
printed table as a .txt file. negation scores trained sentiment bundles on a
built-in probe set and prints a table (or JSON); cells draws one unit's
activation over a text as an HTML page and a PNG; judge counts how often a
classifier labels a conditional LM's texts as asked (`rnnkit.lab.judge`).
"""

from __future__ import annotations

import time
from pathlib import Path

from rnnkit.cli.common import check_output_dir
from rnnkit.errors import InputError

FILES = {"gradients": ("gradients.png", "gradients.json", "gradients.txt"),
         "adding": ("adding.png", "adding.json", "adding.txt"),
         "cells": ("cells.html", "cells.png", "cells.json")}


def register(commands) -> None:
    """Add `rnnkit lab gradients|adding|negation|cells` to the CLI."""
    lab = commands.add_parser("lab", help="experiments that show why RNNs forget and what LSTM, GRU and clipping "
                              "do about it, what word order adds over a bag of words, and what one unit does "
                              "(docs/lab*.md)")
    experiments = lab.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)

    g = experiments.add_parser(
        "gradients", help="gradient norm against distance through time: rnn / lstm / gru, at init and trained",
        description="||dL/dh_t|| against the distance T - t for a vanilla RNN, an LSTM and a GRU, computed by the "
                    "numpy engine's BPTT on the adding problem: at initialisation, after training, for a vanilla RNN "
                    "with a large recurrent weight scale (exploding), and that RNN's training curve with and without "
                    "gradient clipping. The defaults take about a minute on 2 CPU cores.")
    g.add_argument("--out", required=True, help="directory for gradients.png, gradients.json, gradients.txt")
    g.add_argument("--length", type=int, default=200, help="T, the sequence length (default %(default)s)")
    g.add_argument("--hidden-size", type=int, default=32, help="(default %(default)s)")
    g.add_argument("--train-steps", type=int, default=3000, help="the longest training (Adam, batch 32) before "
                   "the 'trained' measurement; it stops once the task is learned; 0 skips it (default %(default)s)")
    g.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate for that training (default %(default)s)")
    g.add_argument("--forget-bias", type=float, default=3.0, help="added to the LSTM's forget-gate bias at "
                   "initialisation; the plot also shows 0, torch's default (default %(default)s)")
    g.add_argument("--recurrent-scale", type=float, default=2.0, help="s of the exploding vanilla RNN: W_hh = s Q, "
                   "Q random orthogonal (default %(default)s)")
    g.add_argument("--clip-norm", type=float, default=1.0, help="clipping by global norm in the clipping comparison "
                   "(default %(default)s)")
    g.add_argument("--sgd-lr", type=float, default=0.05, help="plain SGD's learning rate in the clipping comparison "
                   "(default %(default)s)")
    g.add_argument("--clip-steps", type=int, default=300, help="training steps of the clipping comparison "
                   "(default %(default)s)")
    _add_run_arguments(g)
    g.set_defaults(func=cmd_gradients)

    a = experiments.add_parser(
        "adding", help="the adding problem: who learns a dependency across 50, 100, 200 steps",
        description="Train a vanilla RNN, an LSTM and a GRU (numpy engine, from scratch) on the adding problem at "
                    "each --length and report the test MSE (always answering 1 scores 0.167; below 0.05 counts as "
                    "learned), with the training curves. The defaults take about 1-2 minutes on 2 CPU cores "
                    "(a run stops once its test MSE is below --stop-at).")
    a.add_argument("--out", required=True, help="directory for adding.png, adding.json, adding.txt")
    a.add_argument("--length", type=int, nargs="+", default=[50, 100, 200], metavar="T",
                   help="sequence lengths (default: 50 100 200)")
    a.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"], metavar="CELL",
                   help="any of rnn, lstm, gru (default: all three)")
    a.add_argument("--hidden-size", type=int, default=32, help="(default %(default)s)")
    a.add_argument("--steps", type=int, default=4000, help="training steps at most (default %(default)s)")
    a.add_argument("--batch-size", type=int, default=32, help="(default %(default)s)")
    a.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate (default %(default)s)")
    a.add_argument("--clip-norm", type=float, default=1.0, help="clipping by global norm; 0: none (default %(default)s)")
    a.add_argument("--forget-bias", type=float, default=3.0, help="added to the LSTM's forget-gate bias at "
                   "initialisation (default %(default)s)")
    a.add_argument("--eval-every", type=int, default=50, help="steps between test evaluations (default %(default)s)")
    a.add_argument("--test-size", type=int, default=500, help="test sequences per length (default %(default)s)")
    a.add_argument("--stop-at", type=float, default=0.005, help="stop a run once its test MSE is below this; "
                   "0: never (default %(default)s)")
    _add_run_arguments(a)
    a.set_defaults(func=cmd_adding)

    n = experiments.add_parser(
        "negation", help="a bag of words against a recurrent network: accuracy on reviews whose negation or word "
                         "order decides",
        description="Score binary sentiment bundles (rnnkit train imdb, train classify with labels negative and "
                    "positive, rnnkit demo) on a built-in probe set: 30 sentences whose negation decides ('not "
                    "good', 'anything but boring'), each beside its plain counterpart, and 20 pairs of the same "
                    "words in another order with opposite labels (a bag of words scores exactly 50%% on those). "
                    "Prints a table, or JSON with --json.")
    n.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle directories to compare")
    n.add_argument("--engine", choices=("numpy", "torch"), default="numpy", help="(default %(default)s)")
    n.add_argument("--mistakes", type=int, default=0, metavar="N",
                   help="also list each bundle's first N wrong probes (default %(default)s)")
    n.add_argument("--json", action="store_true", help="print one JSON object: every bundle's scores and "
                   "every sentence's P(positive)")
    n.set_defaults(func=cmd_negation)

    c = experiments.add_parser(
        "cells", help="one recurrent unit's activation over a text, token by token (an HTML page and a PNG)",
        description="Run a text through a bundle's recurrent layers on the numpy engine and colour each token "
                    "(a character for charlm bundles; a word for classify, sentiment and wordlm bundles) by one "
                    "unit's activation: tanh(c), the cell state, for an LSTM, h for a GRU or vanilla RNN "
                    "(Karpathy, Johnson & Fei-Fei 2015). Writes cells.html (self-contained), cells.png and "
                    "cells.json into --out; --top K lists the units that follow simple features of the text.")
    c.add_argument("bundle", help="a charlm, wordlm, classify or sentiment bundle of a recurrent model")
    c.add_argument("--cell", type=int, required=True, metavar="N", help="the unit to show: 0 .. hidden size - 1")
    source = c.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text to read")
    source.add_argument("--file", help="read the text from this UTF-8 file")
    c.add_argument("--out", required=True, help="directory for cells.html, cells.png, cells.json")
    c.add_argument("--layer", type=int, help="which layer, from 0 (default: the top one)")
    c.add_argument("--reverse", action="store_true", help="the reverse direction of a bidirectional model")
    c.add_argument("--top", type=int, default=0, metavar="K", help="also list, for each feature of the text "
                   "(characters: inside quotes, position in the line, inside parentheses; words: after a "
                   "negation, position in the text), the K units that correlate with it most (default: none)")
    c.add_argument("--max-tokens", type=int, default=5000, help="read at most this many tokens (default "
                   "%(default)s)")
    c.add_argument("--overwrite", action="store_true", help="replace the files an earlier rnnkit lab cells "
                   "wrote in --out")
    c.set_defaults(func=cmd_cells)
    j = experiments.add_parser(
        "judge", help="write texts of each label with a conditional LM and count how often a classifier agrees",
        description="Write --per-label texts of every label with a conditional-LM bundle (rnnkit train "
                    "generate-review), label each with a classifier bundle (rnnkit train imdb / classify / "
                    "sentiment) and report the share labelled as asked, per label and overall. A generator that "
                    "ignored its label scores about 1/K (50%% for two labels) with a balanced classifier.")
    j.add_argument("generator", help="conditional-LM bundle directory (rnnkit train generate-review)")
    j.add_argument("classifier", help="classifier bundle directory whose labels include the generator's")
    j.add_argument("--per-label", type=int, default=200, help="texts written per label (default %(default)s)")
    j.add_argument("--length", type=int, default=60, help="most words per text; a text may end sooner at the "
                   "model's end of review (default %(default)s)")
    j.add_argument("--temperature", type=float, default=0.8, help="(default %(default)s)")
    j.add_argument("--top-k", type=int, help="sample among the k most likely words (default: all)")
    j.add_argument("--seed", type=int, default=0, help="(default %(default)s)")
    j.add_argument("--examples", type=int, default=2, help="texts of each label shown (default %(default)s)")
    j.add_argument("--engine", choices=("numpy", "torch"), default="numpy", help="(default %(default)s)")
    j.add_argument("--json", action="store_true", help="print the result as one JSON object")
    j.set_defaults(func=cmd_judge)


def cmd_judge(args) -> int:
    import json

    from rnnkit.cli.common import open_bundle
    from rnnkit.lab import judge
    from rnnkit.tasks.lm import one_thread

    if not 0 <= args.examples <= 100:
        raise InputError(f"--examples must be 0..100; got {args.examples}")
    generator = open_bundle(args.generator, "generate", args.engine)
    if generator.task != "condlm":
        raise InputError(f"{args.generator} holds a {generator.task} model; rnnkit lab judge needs a conditional LM "
                         "(rnnkit train generate-review) as its first bundle")
    classifier = open_bundle(args.classifier, "predict", args.engine)

    def progress(label, r):
        if not args.json:
            print(f"{label}: {r['agreement']:.1%} of {r['texts']} texts labelled {label}", flush=True)

    with one_thread():
        result = judge.judge(generator, classifier, args.per_label, args.length, args.temperature, args.top_k,
                             args.seed, args.examples, progress)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(judge.table(result))
    for label, r in result["per_label"].items():
        for text in r["examples"]:
            print(f"[{label}] {text}")
    return 0


def _add_run_arguments(parser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="(default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files an earlier run of this "
                        "experiment wrote in --out")
    parser.add_argument("--quiet", action="store_true", help="print only the table")


def cmd_gradients(args) -> int:
    from rnnkit.lab import gradients

    settings = gradients.GradientSettings(
        length=args.length, hidden_size=args.hidden_size, train_steps=args.train_steps, lr=args.lr,
        forget_bias=args.forget_bias, recurrent_scale=args.recurrent_scale, clip_norm=args.clip_norm,
        sgd_lr=args.sgd_lr, clip_steps=args.clip_steps, seed=args.seed)
    out = _output_dir(args.out, "gradients", args.overwrite)
    started = time.perf_counter()
    result = gradients.run(settings, progress=None if args.quiet else print)
    return _finish(out, "gradients", result, gradients.table(result), gradients.plot, started, args.quiet)


def cmd_adding(args) -> int:
    from rnnkit.lab import adding

    settings = adding.AddingSettings(
        lengths=tuple(args.length), cells=tuple(args.cells), hidden_size=args.hidden_size, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, clip_norm=args.clip_norm, forget_bias=args.forget_bias,
        eval_every=args.eval_every, test_size=args.test_size, stop_at=args.stop_at, seed=args.seed)
    out = _output_dir(args.out, "adding", args.overwrite)
    if not args.quiet:
        print(f"baseline: always answering 1 scores test MSE {adding.BASELINE_MSE:.3f}; "
              f"below {adding.LEARNED_MSE} counts as learned")
    started = time.perf_counter()

    def progress(r):
        print(f"{r['cell']:<4} T={r['length']:<4} test MSE {r['final_test_mse']:.4f} after {r['steps'][-1]} steps "
              f"({r['seconds']:.1f} s){'  learned' if r['learned'] else ''}", flush=True)

    result = adding.run(settings, progress=None if args.quiet else progress)
    return _finish(out, "adding", result, adding.table(result), adding.plot, started, args.quiet)


def cmd_negation(args) -> int:
    import json

    from rnnkit.lab import negation
    from rnnkit.tasks import load_predictor

    if args.mistakes < 0:
        raise InputError(f"--mistakes must be at least 0; got {args.mistakes}")
    results = [negation.score(load_predictor(path, engine=args.engine), path) for path in args.bundles]
    if args.json:
        print(json.dumps({"experiment": "negation", "engine": args.engine, "results": results}, ensure_ascii=False))
        return 0
    print(negation.table(results))
    for result in results if args.mistakes else ():
        print(f"\n{result['bundle']}: {result['model']}")
        print("\n".join(negation.mistakes(result, args.mistakes)) or "  no wrong probes")
    return 0


def cmd_cells(args) -> int:
    from rnnkit.bundle import load_bundle
    from rnnkit.cli.common import checked_utf8
    from rnnkit.fileio import atomic_write_text
    from rnnkit.lab import cells, report

    if args.top < 0 or args.max_tokens < 1:
        raise InputError(f"--top must be at least 0 and --max-tokens at least 1; got {args.top}, {args.max_tokens}")
    text = checked_utf8(args.text, "--text") if args.text is not None else _read_text(args.file)
    bundle = load_bundle(args.bundle)
    result = cells.activations(bundle, text, args.layer, args.reverse, args.max_tokens)
    units = result.values.shape[1]
    if not 0 <= args.cell < units:
        raise InputError(f"--cell must be in 0..{units - 1} (layer {result.layer} has {units} units); got {args.cell}")
    out = _output_dir(args.out, "cells", args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    html_file, png, json_file = (out / name for name in FILES["cells"])
    title = f"{bundle.path.name}: {bundle.config.cell.upper()} unit {args.cell}"
    atomic_write_text(html_file, cells.html_page(result, args.cell, title))
    cells.plot(result, args.cell, title, png)
    top = cells.correlations(result, args.top) if args.top else {}
    report.save_json({"experiment": "cells", "bundle": str(args.bundle), "model": bundle.config.describe(),
                      "cell": args.cell, "layer": result.layer, "reverse": result.reverse, "value": result.kind,
                      "level": result.level, "tokens": result.tokens, "unknown": result.unknown,
                      "activation": result.values[:, args.cell].round(5).tolist(), "top": top}, json_file)
    values = result.values[:, args.cell]
    print(f"unit {args.cell} of layer {result.layer}{' (reverse)' if result.reverse else ''}: {result.kind} over "
          f"{len(result.tokens)} {'characters' if result.level == 'char' else 'words'} ({result.unknown} unknown), "
          f"from {values.min():+.3f} to {values.max():+.3f}, mean {values.mean():+.3f}")
    for feature, ranked in top.items():
        listed = ", ".join(f"{r['unit']} (r {r['r']:+.2f})" for r in ranked) or "- (constant in this text)"
        print(f"  {feature}: {listed}")
    print(f"wrote {html_file}, {png}, {json_file}")
    return 0


def _read_text(path: str) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"--file {path} is not UTF-8 text; re-encode it (e.g. iconv -t UTF-8)") from None
    except FileNotFoundError:
        raise InputError(f"--file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise InputError(f"--file {path} is a directory; give a text file") from None


def _output_dir(out: str, experiment: str, overwrite: bool) -> Path:
    """--out as a Path: new or empty, or (with --overwrite) holding only this experiment's files."""
    path = check_output_dir(out)
    entries = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    foreign = [name for name in entries if name not in FILES[experiment]]
    if foreign:
        raise InputError(f"--out {out} holds files rnnkit lab {experiment} did not write ({foreign[0]}, ...); "
                         "give a new or empty directory")
    if entries and not overwrite:
        raise InputError(f"--out {out} already holds a run of rnnkit lab {experiment}; add --overwrite to replace "
                         "it, or give a new directory")
    return path


def _finish(out: Path, experiment: str, result: dict, table: str, plot, started: float, quiet: bool) -> int:
    from rnnkit.fileio import atomic_write_text
    from rnnkit.lab import report

    out.mkdir(parents=True, exist_ok=True)
    png, json_file, txt = (out / name for name in FILES[experiment])
    result["seconds"] = round(time.perf_counter() - started, 1)
    plot(result, png)
    report.save_json(result, json_file)
    atomic_write_text(txt, table + "\n")
    print(table)
    if not quiet:
        took = f"{result['seconds']:.0f} s" if result["seconds"] < 120 else f"{result['seconds'] / 60:.1f} min"
        print(f"({took}) wrote {png}, {json_file}, {txt}")
    return 0

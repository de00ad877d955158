"""`rnnkit train imdb` (the IMDB preset of classify), `rnnkit demo`, and `rnnkit evaluate` for sentiment bundles
(`rnnkit demo`'s, and those older rnnkit versions wrote for `train imdb`)."""

from __future__ import annotations

import json
import sys
import time

from rnnkit.cli.common import (add_model_arguments, add_model_choice, add_train_arguments, check_output_dir,
                               model_config_from, print_trained, run_options, train_config_from)


def register(commands, train_tasks) -> None:
    imdb = train_tasks.add_parser("imdb", help="movie-review sentiment on IMDB (many-to-one; a preset of classify)",
                                  description="Train embedding -> recurrent layers -> sigmoid on IMDB reviews: "
                                              "`train classify` over the aclImdb layout with IMDB's defaults. The "
                                              "bundle is a classify bundle (labels negative, positive); `rnnkit "
                                              "evaluate BUNDLE` reads the aclImdb test split.")
    imdb.add_argument("--data", help="aclImdb_v1.tar.gz or an aclImdb/ folder (default: $RNNKIT_IMDB, then the "
                                     "download location)")
    imdb.add_argument("--out", default="runs/imdb", help="bundle directory (default %(default)s)")
    _add_text_arguments(imdb)
    imdb.add_argument("--init", metavar="BUNDLE",
                      help="start from a trained encoder (rnnkit pretrain's word language model, or a classifier): "
                           "its embedding, recurrent layers and vocabulary; the head starts fresh")
    add_model_arguments(imdb)
    add_model_choice(imdb)
    add_train_arguments(imdb)
    imdb.set_defaults(func=cmd_train_imdb)

    demo = commands.add_parser("demo", help="train and try a sentiment model on built-in generated reviews "
                                            "(offline, < 1 min)")
    demo.add_argument("--out", default="runs/demo", help="bundle directory (default %(default)s)")
    demo.add_argument("--epochs", type=int, default=6)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--engine", choices=("torch", "numpy"), default="torch",
                      help="training engine (default %(default)s); predictions always run on the numpy engine")
    demo.add_argument("--quiet", action="store_true")
    add_model_arguments(demo, hidden=32, embedding_dim=32, dropout=0.0, pooling="last")
    demo.set_defaults(func=cmd_demo)


def _add_text_arguments(parser) -> None:
    parser.add_argument("--vocab-size", type=int, default=30000,
                        help="words in the vocabulary incl. <pad> and <unk>; 0 = every training word "
                             "(default %(default)s)")
    parser.add_argument("--maxlen", type=int, default=500,
                        help="keep at most this many tokens per review (default %(default)s)")
    parser.add_argument("--truncating", choices=("pre", "post"), default="pre",
                        help="drop tokens from the start (pre: keep the ending) or the end (default %(default)s)")
    parser.add_argument("--padding", choices=("pre", "post"), default="post",
                        help="post: length-bucketed, masked batches (fast); pre: Keras-style fixed maxlen "
                             "(default %(default)s)")
    parser.add_argument("--packed", action="store_true",
                        help="run recurrent layers on packed sequences instead of masked padded batches "
                             "(same results; slower on CPU, may win on GPU)")


def cmd_train_imdb(args) -> int:
    """`rnnkit train imdb`: `train classify` over the aclImdb layout with IMDB's defaults (a classify bundle)."""
    from rnnkit.cli.classify import describe_data, pretrained_encoder
    from rnnkit.tasks.classify import ClassifySettings, train
    from rnnkit.tasks.classify.imdb import LABELS, imdb_split

    out = check_output_dir(args.out)
    train_config = train_config_from(args)  # validate every option before reading any data
    init = pretrained_encoder(args)
    data = imdb_split(args.data, "train")
    settings = ClassifySettings(labels=LABELS, maxlen=args.maxlen, truncating=args.truncating, padding=args.padding,
                                vocab_size=args.vocab_size or None, text_field=data.text_field,
                                label_field=data.label_field, dataset="imdb")
    if not args.quiet:
        describe_data({"train": data})
    model_config = model_config_from(args, vocab_size=1)  # the vocabulary is built from the training split
    started = time.perf_counter()
    result = train(data, model_config, train_config, settings, out, packed=args.packed, init=init,
                   command="rnnkit train imdb", **run_options(args))
    best = result["best"]
    print_trained(f"best validation accuracy {best['accuracy']:.4f}, loss {best['loss']:.4f}",
                  (time.perf_counter() - started) / 60, out,
                  f"rnnkit evaluate {out} --data PATH", f'rnnkit predict {out} "a review"')
    return 0


def cmd_demo(args) -> int:
    from rnnkit.config import TrainConfig
    from rnnkit.tasks import load_predictor, sentiment

    out = check_output_dir(args.out)
    print(f"rnnkit demo: training a small {args.cell.upper()} on 4,000 generated reviews with the {args.engine} "
          "engine (offline)...", file=sys.stderr)
    sequences, labels, vocab = sentiment.demo_data(4000, seed=args.seed)
    test_seqs, test_labels, _ = sentiment.demo_data(1000, seed=args.seed + 1, vocab=vocab)
    model_config = model_config_from(args, vocab_size=len(vocab))
    train_config = TrainConfig(epochs=args.epochs, batch_size=32, learning_rate=5e-3, patience=2, seed=args.seed)
    settings = sentiment.SentimentSettings(maxlen=100, vocab_size=None)
    sentiment.train(sequences, labels, vocab, model_config, train_config, settings, out, progress=not args.quiet,
                    extra_settings={"dataset": "demo"}, engine=args.engine, overwrite=True)  # a demo run is redone
    model = load_predictor(out, engine="numpy")  # the light runtime runs what either engine trained
    metrics = model.evaluate(test_seqs, test_labels)
    print(f"held-out generated reviews: accuracy {metrics['accuracy']:.3f}, loss {metrics['loss']:.3f}")
    for text in ("The plot was wonderful and the cast was great.", "Not good. The ending was a boring mess."):
        result = model.predict([text])[0]
        print(f"  {result['label']:8s} {result['probability']:.3f}  {text}")
    print(f"bundle saved to {out}; try: rnnkit predict {out} \"a funny and charming film\"")
    return 0


def cmd_evaluate(model, args) -> int:
    """`rnnkit evaluate BUNDLE [--data PATH] [--split test|train]` for sentiment bundles."""
    from rnnkit.tasks import sentiment

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

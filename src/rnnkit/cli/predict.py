"""`rnnkit predict BUNDLE TEXT... | -`: labels of texts (sentiment and classify bundles), with --top and --explain."""

from __future__ import annotations

import json

from rnnkit.cli.common import answer_lines, checked_utf8, open_bundle, stdin_bytes
from rnnkit.errors import InputError


def register(commands) -> None:
    predict = commands.add_parser("predict", help="labels of texts given as arguments, or one per line on stdin (-)")
    predict.add_argument("bundle", help="bundle directory written by rnnkit train (imdb, demo or classify)")
    predict.add_argument("texts", nargs="*", help='texts to label; "-" reads one text per line from stdin '
                                                  "(JSON lines out, one per input line, in order)")
    predict.add_argument("--top", type=int, help="also list the TOP most probable classes (classify bundles)")
    predict.add_argument("--explain", action="store_true",
                         help="also show the words that pushed each prediction most (each left out in turn)")
    predict.add_argument("--words", type=int, default=8, help="words shown with --explain (default %(default)s)")
    predict.add_argument("--engine", choices=("numpy", "torch"), default="numpy", help="numpy needs no torch (default)")
    predict.add_argument("--json", action="store_true", help="print one JSON object per text")
    predict.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    if args.explain and not 1 <= args.words <= 100:
        raise InputError(f"--words must be 1..100; got {args.words}")
    model = open_bundle(args.bundle, "explain" if args.explain else "predict", args.engine)
    if args.top is not None and model.task != "classify":
        raise InputError(f"--top lists the most probable classes of a classify bundle; {args.bundle} holds a "
                         f"{model.task} model (leave --top out)")
    answer = _answerer(model, args)
    if args.texts == ["-"]:
        return answer_lines(stdin_bytes(), answer, "judged")
    if not args.texts:
        raise InputError('give a review or other text to label, e.g. rnnkit predict BUNDLE "A moving film.", '
                         "or - to read stdin")
    failures = 0
    for text in (checked_utf8(t, "the text") for t in args.texts):
        result = answer(text)
        failures += "error" in result
        if args.json:
            print(json.dumps({"text": text, **result}, ensure_ascii=False))
        else:
            print(_line(result, args.explain))
    return 1 if failures else 0


def _answerer(model, args):
    """text -> the answer dict for one text (raises InputError for a text that cannot be read)."""
    if args.explain:
        return lambda text: model.explain(text, top_k=args.words)
    if model.task == "classify":
        def classify(text: str) -> dict:
            result = model.predict([text], top=args.top)[0]
            if "error" in result:
                raise InputError(result["error"])
            return result
        return classify
    return lambda text: model.predict([text])[0]


def _line(result: dict, explain: bool) -> str:
    """The plain-text answer: label, score (and the top classes, or the words that pushed it)."""
    if explain:
        prediction = result["prediction"]
        rows = [f"{prediction['label']}\t{_score(prediction):.4f}"]
        target = result.get("explained", "positive")
        for word in result["words"]:
            direction = "towards" if word["effect"] > 0 else "away from"
            rows.append(f"  {word['word']!r:>20s} {word['effect']:+.4f}  ({direction} {target})")
        return "\n".join(rows)
    line = f"{result['label']}\t{_score(result):.4f}" + ("  (truncated)" if result["truncated"] else "")
    if "labels" in result:
        line += "\ttags: " + (", ".join(result["labels"]) or "(none above the threshold)")
    if "top" in result:
        line += "\t" + "  ".join(f"{t['label']} {t['score']:.4f}" for t in result["top"])
    return line


def _score(result: dict) -> float:
    return result["score"] if "score" in result else result["probability"]

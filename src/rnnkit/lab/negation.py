"""A negation probe: short reviews whose label only word order decides (`rnnkit lab negation`).

A bag of words (`--model bow`, the one_to_one model) reads a text as the mean
of its words' embeddings, so "not good" is the bag {not, good}: whatever it
learnt of "not" is added to "good", never applied to it. A recurrent network
reads "not" first and can carry it to the next word. This probe set shows the
difference on sentences written for it, in two parts:

    NEGATED   30 pairs: a sentence whose negation decides ("The movie was not
              good.", "It was anything but boring."), both polarity flips, 15
              each way, beside its plain counterpart without the negation ("The
              movie was good.": the opposite label)
    ORDER     20 pairs of the same words in another order with opposite labels
              ("The trailer was awful but the movie was wonderful." / "The
              trailer was wonderful but the movie was awful."): a bag of words gives both the same score, so
              it gets exactly one of each pair right, 50%

The 70 probes (the negated sentences and both sentences of every order pair)
are half positive, half negative, as are the 30 plain counterparts. Scoring
needs a binary sentiment classifier whose labels are negative and positive: a
classify bundle (`rnnkit train imdb`, or `train classify` on such labels) or a
sentiment bundle (`rnnkit demo`). Words the model never saw are read as <unk>;
the share of such tokens is reported, because a probe full of unknown words
says more about the vocabulary than about word order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.data.vocab import tokenize
from rnnkit.errors import InputError

LABELS = ("negative", "positive")

# (the negated sentence, its label, the plain counterpart: the same sentence without the negation, of the
# opposite label)
NEGATED = (
    # a positive word negated: negative
    ("The movie was not good.", "negative", "The movie was good."),
    ("I did not enjoy this film.", "negative", "I enjoyed this film."),
    ("The acting was not convincing.", "negative", "The acting was convincing."),
    ("It is not a film I would recommend.", "negative", "It is a film I would recommend."),
    ("The story never made me care.", "negative", "The story made me care."),
    ("Nobody in the cast was any good.", "negative", "Everybody in the cast was good."),
    ("The jokes were not funny.", "negative", "The jokes were funny."),
    ("I wanted to like it, but I could not.", "negative", "I wanted to like it, and I did."),
    ("This was not the masterpiece I was promised.", "negative", "This was the masterpiece I was promised."),
    ("The ending was not satisfying.", "negative", "The ending was satisfying."),
    ("The plot did not surprise me once.", "negative", "The plot surprised me."),
    ("There is nothing beautiful about this film.", "negative", "There is something beautiful about this film."),
    ("The performances were hardly impressive.", "negative", "The performances were impressive."),
    ("I didn't love it, and I won't watch it again.", "negative", "I loved it, and I will watch it again."),
    ("The script is far from brilliant.", "negative", "The script is brilliant."),
    # a negative word negated: positive
    ("The movie was not bad at all.", "positive", "The movie was bad."),
    ("It was anything but boring.", "positive", "It was boring."),
    ("I was never bored for a minute.", "positive", "I was bored every minute."),
    ("I have no complaints about this film.", "positive", "I have many complaints about this film."),
    ("There was not one dull scene.", "positive", "There was one dull scene after another."),
    ("You will not regret watching it.", "positive", "You will regret watching it."),
    ("I can't think of anything wrong with it.", "positive", "I can think of many things wrong with it."),
    ("The plot was never confusing.", "positive", "The plot was confusing."),
    ("I wasn't disappointed.", "positive", "I was disappointed."),
    ("You should not skip this film.", "positive", "You should skip this film."),
    ("The two hours did not feel long at all.", "positive", "The two hours felt long."),
    ("It never gets old.", "positive", "It gets old fast."),
    ("Nothing about it was a waste of time.", "positive", "All of it was a waste of time."),
    ("The effects were not cheap or silly.", "positive", "The effects were cheap and silly."),
    ("I didn't hate a single minute of it.", "positive", "I hated every minute of it."),
)

# (a positive sentence, a negative sentence): the same words, in another order
ORDER = (
    ("I hated the idea but loved the film.", "I loved the idea but hated the film."),
    ("The first half is boring, but the second half is great.",
     "The first half is great, but the second half is boring."),
    ("It is good, not bad.", "It is bad, not good."),
    ("Not boring, just brilliant.", "Not brilliant, just boring."),
    ("I hated the book and loved the film.", "I loved the book and hated the film."),
    ("The trailer was awful but the movie was wonderful.", "The trailer was wonderful but the movie was awful."),
    ("It starts weak but ends strong.", "It starts strong but ends weak."),
    ("Critics called it dull; I found it thrilling.", "Critics called it thrilling; I found it dull."),
    ("A bad start, a great finish.", "A great start, a bad finish."),
    ("My friends were bored, but I was thrilled.", "My friends were thrilled, but I was bored."),
    ("Others may find it silly; I found it charming.", "Others may find it charming; I found it silly."),
    ("Funny, not stupid.", "Stupid, not funny."),
    ("Beautiful to look at, never boring.", "Boring to look at, never beautiful."),
    ("The reviews were terrible, the film is excellent.", "The reviews were excellent, the film is terrible."),
    ("Poor marketing, superb movie.", "Superb marketing, poor movie."),
    ("I went in bored and came out delighted.", "I went in delighted and came out bored."),
    ("Slow at first, then gripping.", "Gripping at first, then slow."),
    ("Once dull, now a favourite of mine.", "Once a favourite of mine, now dull."),
    ("The film is a joy; only the poster is ugly.", "The poster is a joy; only the film is ugly."),
    ("Boring? Never. Brilliant? Always.", "Brilliant? Never. Boring? Always."),
)


@dataclass(frozen=True)
class Probe:
    """One sentence of the set: its text, label, part ("negated", "plain" or "order") and pair number."""

    text: str
    label: str
    part: str
    pair: int


def probe_set() -> list[Probe]:
    """Every sentence of the set: the negated sentences and their plain counterparts, then the order pairs."""
    other = {"negative": "positive", "positive": "negative"}
    probes = []
    for pair, (negated, label, plain) in enumerate(NEGATED):
        probes += [Probe(negated, label, "negated", pair), Probe(plain, other[label], "plain", pair)]
    for pair, (positive, negative) in enumerate(ORDER):
        probes += [Probe(positive, "positive", "order", pair), Probe(negative, "negative", "order", pair)]
    return probes


def check_sentiment(model) -> None:
    """InputError (one line, naming the fix) unless `model` is a binary classifier of negative and positive."""
    path = model.bundle.path
    if model.task == "sentiment":
        return
    if model.task != "classify":
        raise InputError(f"{path} holds a {model.task} model; rnnkit lab negation needs a binary sentiment "
                         "classifier (rnnkit train imdb, or train classify with labels negative and positive)")
    if model.settings.kind != "binary" or tuple(model.labels) != LABELS:
        raise InputError(f"{path} classifies into {', '.join(map(repr, model.labels))}; rnnkit lab negation needs "
                         "the two labels 'negative' and 'positive' (rnnkit train imdb, or train classify on such "
                         "labels)")


def p_positive(model, texts: list[str]) -> tuple[np.ndarray, np.ndarray, float]:
    """P(positive) of each text (NaN where the model knows none of its words), the count of each text's tokens
    the model does not know, and the share of unknown tokens in all."""
    encoded, known, tokens, unknown = [], [], 0, np.zeros(len(texts), np.int64)
    for i, text in enumerate(texts):
        try:
            ids, facts = model.encode(text)
        except InputError:  # no word the model knows: left unanswered, counted wrong
            unknown[i] = len(tokenize(text))
            tokens += unknown[i]
            continue
        encoded.append(ids)
        known.append(i)
        tokens += facts["tokens"]
        unknown[i] = facts["unknown"]
    p = np.full(len(texts), np.nan)
    if encoded:
        probs = np.asarray(model.probabilities(encoded))
        p[known] = probs if probs.ndim == 1 else probs[:, 1]  # sentiment: (N,); classify: (N, 2)
    return p, unknown, unknown.sum() / max(tokens, 1)


def score(model, name: str | None = None) -> dict:
    """One bundle on the probe set -> {"bundle", "model", accuracies per part, pairs right, "unknown_tokens",
    "unanswered", "sentences": [{"text", "label", "part", "pair", "p_positive", "correct", "unknown" (tokens
    the model does not know)}]}."""
    check_sentiment(model)
    probes = probe_set()
    p, unknown_words, unknown = p_positive(model, [probe.text for probe in probes])
    guess = np.where(np.isnan(p), -1, (p >= 0.5).astype(int))
    correct = guess == np.array([LABELS.index(probe.label) for probe in probes])
    part = np.array([probe.part for probe in probes])

    def accuracy(mask):
        return float(correct[mask].mean())

    def both_right(kind):  # pairs whose two sentences are both right
        negated = (part == "negated") | (part == "plain")
        rows = correct[negated] if kind == "negation" else correct[part == "order"]
        return int(rows.reshape(-1, 2).all(axis=1).sum())  # the two sentences of a pair are neighbours

    probe_mask = part != "plain"
    return {
        "bundle": name or str(model.bundle.path), "task": model.task, "model": model.bundle.config.describe(),
        "negated": accuracy(part == "negated"), "plain": accuracy(part == "plain"),
        "negation_pairs_right": both_right("negation"), "negation_pairs": len(NEGATED),
        "order": accuracy(part == "order"), "order_pairs_right": both_right("order"), "order_pairs": len(ORDER),
        "probes": accuracy(probe_mask), "probe_count": int(probe_mask.sum()),
        "unknown_tokens": round(unknown, 4), "unanswered": int(np.isnan(p).sum()),
        "sentences": [{"text": probe.text, "label": probe.label, "part": probe.part, "pair": probe.pair,
                       "p_positive": None if np.isnan(q) else round(float(q), 4), "correct": bool(ok),
                       "unknown": int(u)} for probe, q, ok, u in zip(probes, p, correct, unknown_words)],
    }


def table(results: list[dict]) -> str:
    """One row per bundle: accuracy on the negated sentences, their plain counterparts, the order pairs and all
    probes; pairs with both sentences right; the share of tokens the model does not know."""
    width = max(6, *(len(r["bundle"]) for r in results))
    lines = [f"negation probe: {len(NEGATED)} negated sentences and their plain counterparts, {len(ORDER)} pairs of "
             "the same words in another order (a bag of words scores 50% on these)",
             f"{'bundle':<{width}}  {'negated':>7}  {'plain':>6}  {'both':>5}  {'order':>6}  {'both':>5}  "
             f"{'probes':>6}  {'unknown':>7}"]
    for r in results:
        lines.append(f"{r['bundle']:<{width}}  {r['negated']:>7.1%}  {r['plain']:>6.1%}  "
                     f"{r['negation_pairs_right']:>2}/{r['negation_pairs']:<2}  {r['order']:>6.1%}  "
                     f"{r['order_pairs_right']:>2}/{r['order_pairs']:<2}  {r['probes']:>6.1%}  "
                     f"{r['unknown_tokens']:>7.1%}")
    return "\n".join(lines)


def mistakes(result: dict, count: int) -> list[str]:
    """The first `count` probes (not plain counterparts) the bundle got wrong, one line each."""
    wrong = [s for s in result["sentences"] if not s["correct"] and s["part"] != "plain"]
    return [f"  {s['label']:<8}  P(positive) {'-' if s['p_positive'] is None else format(s['p_positive'], '.2f'):>4}"
            f"  {s['text']}" for s in wrong[:count]]

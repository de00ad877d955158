"""Judging a conditional LM: does a text written for a label read as that label to a classifier?

`judge(generator, classifier, per_label)` writes `per_label` texts of every label
with the generator (a `tasks.condlm.ConditionalLM`), labels each with the
classifier (any predictor with `labels` and `predict`, e.g. a classify, imdb or
sentiment bundle's), and reports the share labelled as asked: per label and
overall, with what the others were labelled as. A generator that ignored its
label would score about 1/K overall (0.5 for two labels) when the classifier is
balanced; a text the classifier cannot read (no word it knows) counts as not
agreeing.
"""

from __future__ import annotations

import time

from rnnkit.errors import InputError

UNREADABLE = "(unreadable)"


def judge(generator, classifier, per_label: int = 200, length: int = 60, temperature: float = 0.8,
          top_k: int | None = None, seed: int = 0, examples: int = 3, progress=None) -> dict:
    """Write `per_label` texts of each of the generator's labels and report the classifier's agreement.

    Texts of label k draw from seeds seed + k * per_label + i. `progress(label, result)` is called after
    each label. Returns {"agreement": overall share, "texts": total, "per_label": {label: {"agreement",
    "texts", "labelled_as": {label: count}, "examples": [...]}}, "chance": 1/K, "settings": {...}}.
    """
    missing = [label for label in generator.labels if label not in classifier.labels]
    if missing:
        raise InputError(f"the classifier ({classifier.bundle.path}) labels texts as {', '.join(classifier.labels)}, "
                         f"which lacks the generator's label(s) {', '.join(missing)}; give a classifier trained on "
                         f"the generator's labels ({', '.join(generator.labels)})")
    if isinstance(per_label, bool) or not isinstance(per_label, int) or not 1 <= per_label <= 100_000:
        raise InputError(f"--per-label must be a whole number of texts in 1..100000; got {per_label!r}")
    started, per, agreed = time.perf_counter(), {}, 0
    for k, label in enumerate(generator.labels):
        texts = generator.generate_many(label, per_label, length=length, temperature=temperature, top_k=top_k,
                                        seed=seed + k * per_label)
        said = labels_of(classifier, texts)
        hits = sum(s == label for s in said)
        agreed += hits
        counts = {name: said.count(name) for name in dict.fromkeys([*classifier.labels, UNREADABLE])
                  if said.count(name)}
        per[label] = {"agreement": hits / per_label, "texts": per_label, "labelled_as": counts,
                      "mean_words": sum(len(t.split()) for t in texts) / per_label, "examples": texts[:examples]}
        if progress is not None:
            progress(label, per[label])
    total = per_label * len(generator.labels)
    return {"agreement": agreed / total, "texts": total, "chance": 1 / len(generator.labels), "per_label": per,
            "generator": str(generator.bundle.path), "classifier": str(classifier.bundle.path),
            "settings": {"per_label": per_label, "length": length, "temperature": temperature, "top_k": top_k,
                         "seed": seed, "engine": generator.engine},
            "seconds": round(time.perf_counter() - started, 1)}


def labels_of(classifier, texts: list[str]) -> list[str]:
    """The classifier's label of each text; UNREADABLE for one it cannot read (a sentiment model refuses the
    whole batch for one such text: the texts are then labelled one at a time)."""
    try:
        answers = classifier.predict(texts)
    except InputError:
        answers = []
        for text in texts:
            try:
                answers += classifier.predict([text])
            except InputError as exc:
                answers.append({"error": str(exc)})
    return [answer.get("label", UNREADABLE) if "error" not in answer else UNREADABLE for answer in answers]


def table(result: dict) -> str:
    """The result as a few printed lines."""
    lines = [f"{'label':<16} {'texts':>6} {'as asked':>9}   labelled as"]
    for label, r in result["per_label"].items():
        shown = ", ".join(f"{name} {n}" for name, n in r["labelled_as"].items())
        lines.append(f"{label:<16} {r['texts']:>6} {r['agreement']:>9.1%}   {shown}")
    lines.append(f"{'overall':<16} {result['texts']:>6} {result['agreement']:>9.1%}   (a generator that ignored "
                 f"its label: about {result['chance']:.0%})")
    return "\n".join(lines)

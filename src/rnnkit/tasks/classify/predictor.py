"""A trained text classifier, ready to predict, explain and evaluate.

Every prediction has one schema, whatever the number of classes: the most
probable `label`, its `score` (probability), `probabilities` of every class,
with `labels` (every tag at or above the threshold) for multi-label models, and
facts about the text (`tokens`, `unknown`, `truncated`). A text that cannot be
read (no words, or none the model knows) gets {"error": ...} in its place: one
bad line never costs the others their answers.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from rnnkit.bundle import CONFIG_FILE, VOCAB_FILE, Bundle, check_fit, reading_part
from rnnkit.data.labelled import Label
from rnnkit.data.vocab import Vocab, tokenize
from rnnkit.errors import InputError
from rnnkit.tasks.classify.data import targets
from rnnkit.tasks.classify.scoring import EVAL_BATCH, example_losses, metrics, predicted, probabilities
from rnnkit.tasks.classify.settings import ClassifySettings
from rnnkit.tasks.engines import TEXT_TO_SCORES, many_to_one_logits
from rnnkit.tasks.words import encode_words
from rnnkit.tasks.explain import explain_plan, word_effects
from rnnkit.tasks.protocol import BasePredictor

EXCERPT_CHARS = 300  # how much of a text the worst mistakes show


def check_fits(bundle: Bundle, settings: ClassifySettings) -> None:
    """BundleError unless the model is a classifier of its labels: many_to_one (recurrent) or one_to_one (a bag
    of words), one output per class (one logit for two classes)."""
    c = bundle.config
    check_fit(bundle, [need for ok, need in (
        (c.architecture in TEXT_TO_SCORES,
         f"architecture many_to_one or one_to_one (a text in, scores out), not {c.architecture}"),
        (c.output_size == settings.output_size,
         f"output_size {settings.output_size} for its {len(settings.labels)} labels ({settings.kind}), "
         f"not {c.output_size}"),
    ) if not ok])


class ClassifierModel(BasePredictor):
    """A trained `classify` bundle.

        model = rnnkit.load("runs/tickets")
        model.predict(["The app crashes when I log in"], top=3)
        model.explain("The app crashes when I log in")
        model.evaluate(texts, labels)          # report, confusion matrix, worst mistakes

    Attributes:
        bundle, engine, vocab, settings (ClassifySettings), labels (the class names, in id order).
    """

    task = "classify"
    operations = ("predict", "explain", "evaluate")

    def __init__(self, bundle: Bundle, engine: str = "numpy") -> None:
        self.bundle, self.engine = bundle, engine
        with reading_part(bundle, CONFIG_FILE):
            self.settings = ClassifySettings.from_bundle(bundle.settings)
        self.labels = self.settings.labels
        check_fits(bundle, self.settings)
        with reading_part(bundle, VOCAB_FILE):
            self.vocab = Vocab.from_json(bundle.vocab)
        self._logits = many_to_one_logits(bundle, engine)

    def describe(self) -> dict:
        return {**super().describe(), "labels": list(self.labels), "kind": self.settings.kind}

    # ------------------------------------------------------------------ reading text

    def encode(self, text: str) -> tuple[np.ndarray, dict]:
        """Ids of `text` cut to maxlen, and facts (tokens, unknown, truncated); InputError if it cannot be read."""
        return encode_words(text, self.vocab, self.settings.maxlen, self.settings.truncating, "text")

    def probabilities(self, sequences: Sequence[np.ndarray], batch_size: int = EVAL_BATCH) -> np.ndarray:
        """(N, K) class probabilities of already-encoded, already-truncated id sequences."""
        return probabilities(self._logits, sequences, self.settings, batch_size)

    # ------------------------------------------------------------------ operations

    def predict(self, texts: Sequence[str] | str, top: int | None = None) -> list[dict]:
        """One answer per text, in order (see the module docstring); `top` adds the `top` most probable classes."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)):
            raise InputError(f"predict takes a string or a list of strings; got {type(texts).__name__}")
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= len(self.labels)):
            raise InputError(f"top must be a whole number in 1..{len(self.labels)}; got {top!r}")
        answers: list[dict] = [{} for _ in texts]
        encoded = []
        for number, text in enumerate(texts):
            try:
                encoded.append((number, *self.encode(text)))
            except InputError as exc:
                answers[number] = {"error": str(exc)}
        probs = self.probabilities([ids for _, ids, _ in encoded]) if encoded else np.zeros((0, len(self.labels)))
        for (number, _, facts), p in zip(encoded, probs):
            answers[number] = {**self.answer(p, top), **facts}
        return answers

    def answer(self, p: np.ndarray, top: int | None = None) -> dict:
        """The answer for one text's class probabilities p (K,): label, score, every class's probability
        (multi-label: the labels at or over the threshold; `top`: the `top` most probable classes)."""
        best = int(np.argmax(p))
        answer = {"label": self.labels[best], "score": float(p[best]),
                  "probabilities": {label: float(q) for label, q in zip(self.labels, p)}}
        if self.settings.multi_label:
            answer["labels"] = [label for label, q in zip(self.labels, p) if q >= self.settings.threshold]
        if top:
            order = np.argsort(-p, kind="stable")[:top]
            answer["top"] = [{"label": self.labels[i], "score": float(p[i])} for i in order]
        return answer

    def explain(self, text: str, top_k: int = 10, max_words: int = 1000) -> dict:
        """The prediction and the words that pushed it most: the predicted class's probability with each
        distinct word left out (at most `max_words`), largest change first."""
        plan = self.explain_plan(text, max_words)
        return self.explain_result(plan, self.probabilities(plan["sequences"]), top_k)

    def explain_plan(self, text: str, max_words: int = 1000) -> dict:
        """The text and its leave-one-word-out variants, ready for one model call (`explain_result` reads it)."""
        ids, facts = self.encode(text)
        plan = explain_plan(ids, tokenize(text), self.settings.maxlen, self.settings.truncating, max_words)
        return {**plan, "facts": facts}

    def explain_result(self, plan: dict, probs: np.ndarray, top_k: int) -> dict:
        """`explain`'s answer from the plan's class probabilities (1 + words, K)."""
        label = int(np.argmax(probs[0]))
        return {"prediction": {**self.answer(probs[0]), **plan["facts"]}, "explained": self.labels[label],
                "words": word_effects(plan, probs[:, label], top_k), "words_considered": len(plan["words"]),
                "words_total": plan["words_total"]}

    def evaluate(self, texts: Sequence[str], labels: Sequence[Label], worst: int = 10) -> dict:
        """loss, accuracy, macro-F1 and the full report (per class, confusion matrix) on labelled texts,
        and the `worst` mistakes (highest loss first). Texts the model cannot read are left out and counted."""
        started = time.perf_counter()
        if len(texts) != len(labels):
            raise InputError(f"{len(texts)} texts but {len(labels)} labels")
        kept, sequences = [], []
        for i, text in enumerate(texts):
            try:
                sequences.append(self.encode(text)[0])
                kept.append(i)
            except InputError:
                pass
        if not kept:
            raise InputError("none of the texts has a word the model knows; nothing to evaluate")
        truth = targets([labels[i] for i in kept], self.settings)
        probs = self.probabilities(sequences)
        result = metrics(probs, truth, self.settings)
        losses = example_losses(probs, truth, self.settings)
        guesses = predicted(probs, self.settings)
        result["worst"] = [self._mistake(texts[kept[j]], labels[kept[j]], probs[j], guesses[j], losses[j])
                           for j in np.argsort(-losses, kind="stable")[:worst]]
        result["unreadable"] = len(texts) - len(kept)
        result["seconds"] = round(time.perf_counter() - started, 2)
        return result

    def _mistake(self, text: str, label: Label, p: np.ndarray, guess, loss: float) -> dict:
        if self.settings.multi_label:
            shown = [self.labels[i] for i in np.flatnonzero(guess)]
        else:
            shown = self.labels[int(guess)]
        excerpt = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."
        return {"text": excerpt, "label": list(label) if isinstance(label, tuple) else label, "predicted": shown,
                "score": float(p.max()), "loss": float(loss)}

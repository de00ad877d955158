"""A trained sentiment bundle, ready to predict, explain and evaluate."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from rnnkit.bundle import CONFIG_FILE, VOCAB_FILE, Bundle, check_fit, reading_part
from rnnkit.data.vocab import Vocab, tokenize
from rnnkit.errors import InputError
from rnnkit.tasks.engines import TEXT_TO_SCORES, many_to_one_logits
from rnnkit.tasks.words import encode_words
from rnnkit.tasks.explain import explain_plan, word_effects
from rnnkit.tasks.protocol import BasePredictor
from rnnkit.tasks.sentiment.scoring import EVAL_BATCH, binary_metrics, probabilities
from rnnkit.tasks.sentiment.settings import LABELS, SentimentSettings


class SentimentModel(BasePredictor):
    """A trained sentiment bundle, ready to predict.

        model = rnnkit.load("runs/imdb")
        model.predict(["A wonderful film."])[0]  # {"label": "positive", "probability": 0.97, ...}

    Attributes:
        bundle: the loaded bundle; engine: "numpy" or "torch"; vocab: its word vocabulary;
        settings: how text becomes ids (maxlen, truncating, padding).
    """

    task = "sentiment"
    operations = ("predict", "explain", "evaluate")
    labels = LABELS

    def __init__(self, bundle: Bundle, engine: str = "numpy") -> None:
        check_fits(bundle)
        self.bundle, self.engine = bundle, engine
        with reading_part(bundle, VOCAB_FILE):
            self.vocab = Vocab.from_json(bundle.vocab)
        with reading_part(bundle, CONFIG_FILE):
            self.settings = SentimentSettings.from_bundle(bundle.settings)
        self._logits = many_to_one_logits(bundle, engine)

    def describe(self) -> dict:
        return {**super().describe(), "labels": list(self.labels)}

    def encode(self, text: str) -> tuple[np.ndarray, dict]:
        """Ids of `text` cut to maxlen, and facts about it (tokens, unknown, truncated)."""
        return encode_words(text, self.vocab, self.settings.maxlen, self.settings.truncating, "review", "; give some text to judge")

    def probabilities(self, sequences: Sequence[np.ndarray], batch_size: int = EVAL_BATCH) -> np.ndarray:
        """P(positive) for already-encoded, already-truncated id sequences; (N,) float64."""
        return probabilities(self._logits, sequences, self.settings, batch_size)

    def predict(self, texts: Sequence[str] | str) -> list[dict]:
        """One dict per text: label, probability (of that label), probability_positive, token facts.

        Raises InputError for a text with no words or only unknown words.
        """
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)):
            raise InputError(f"predict takes a string or a list of strings; got {type(texts).__name__}")
        encoded = []
        for number, text in enumerate(texts):
            try:
                encoded.append(self.encode(text))
            except InputError as exc:
                if len(texts) == 1:
                    raise
                raise InputError(f"review {number + 1}: {exc}") from None
        probs = self.probabilities([ids for ids, _ in encoded]) if encoded else np.zeros(0)
        return [prediction(p, facts) for p, (_, facts) in zip(probs, encoded)]

    def explain(self, text: str, top_k: int = 10, max_words: int = 1000) -> dict:
        """The prediction for `text` and the words that pushed it most: P(positive) with each distinct word
        left out (at most `max_words` of them), largest change first."""
        ids, facts = self.encode(text)
        plan = explain_plan(ids, tokenize(text), self.settings.maxlen, self.settings.truncating, max_words)
        scores = self.probabilities(plan["sequences"])
        return explain_result(plan, scores, facts, top_k)

    def evaluate(self, sequences: Sequence[np.ndarray], labels: np.ndarray) -> dict:
        """Metrics on encoded reviews (ids under this model's vocabulary)."""
        started = time.perf_counter()
        metrics = binary_metrics(self.probabilities(sequences), labels)
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        return metrics


def check_fits(bundle: Bundle) -> None:
    """BundleError unless the bundle's model is a sentiment model: many_to_one (or one_to_one, a bag of words),
    with one logit (P(positive))."""
    c = bundle.config
    check_fit(bundle, [need for ok, need in (
        (c.architecture in TEXT_TO_SCORES,
         f"architecture many_to_one or one_to_one (a review in, one score out), not {c.architecture}"),
        (c.output_size == 1, f"output_size 1 (one logit: P(positive)), not {c.output_size}"),
    ) if not ok])


def prediction(p_positive: float, facts: dict) -> dict:
    """The answer for one review (the command line, the API and the service all give this)."""
    label = int(p_positive >= 0.5)
    return {"label": LABELS[label], "probability": float(p_positive if label else 1.0 - p_positive),
            "probability_positive": float(p_positive), **facts}


def explain_result(plan: dict, scores: np.ndarray, facts: dict, top_k: int) -> dict:
    """The prediction and the `top_k` words whose removal changed P(positive) most."""
    return {"prediction": prediction(float(scores[0]), facts), "words": word_effects(plan, scores, top_k),
            "words_considered": len(plan["words"]), "words_total": plan["words_total"]}

"""What the service does with a sentiment model: limit, encode, predict, explain.

Texts longer than `max_text_chars` are cut before tokenizing, from the side the
model itself truncates ("pre": the start, so the ending is kept), and the
answer says `truncated: true`; the model then keeps at most its `maxlen` tokens,
as `rnnkit predict` does.

Explanation by leaving one word out: for each distinct word (all its
occurrences at once) the review is re-scored without it, and
effect = P(positive | review) - P(positive | review without the word),
so a word with effect > 0 pushed the prediction towards positive. The review
and all its variants go to the model in one batched call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.data.batching import truncate
from rnnkit.data.vocab import tokenize
from rnnkit.errors import InputError
from rnnkit.serve.limits import ServeLimits
from rnnkit.tasks.sentiment import LABELS


@dataclass(frozen=True)
class ExplainPlan:
    """The review's ids first, then one variant per word left out; words[i] goes with sequences[i + 1]."""

    sequences: list[np.ndarray]
    words: list[str]
    counts: list[int]
    facts: dict
    words_total: int


class SentimentService:
    """A `SentimentModel` behind the service's limits."""

    labels = LABELS

    def __init__(self, model, limits: ServeLimits) -> None:
        self.model, self.limits = model, limits
        self.maxlen, self.side = model.settings.maxlen, model.settings.truncating

    def cut(self, text: str) -> tuple[str, bool]:
        """`text` cut to max_text_chars from the model's truncation side, and whether it was cut."""
        n = self.limits.max_text_chars
        if len(text) <= n:
            return text, False
        return (text[-n:] if self.side == "pre" else text[:n]), True

    def encode(self, text: str) -> tuple[np.ndarray, dict]:
        """Ids (at most maxlen) and facts; InputError for a text with no (known) words."""
        cut, was_cut = self.cut(text)
        ids, facts = self.model.encode(cut)
        return ids, ({**facts, "truncated": True} if was_cut else facts)

    def encode_all(self, texts: list[str]) -> list[tuple[np.ndarray, dict]]:
        if len(texts) == 1:
            return [self.encode(texts[0])]
        out = []
        for number, text in enumerate(texts):
            try:
                out.append(self.encode(text))
            except InputError as exc:
                raise InputError(f"texts[{number}]: {exc}") from None
        return out

    def probabilities(self, sequences: list[np.ndarray]) -> np.ndarray:
        """P(positive) (N,) for encoded texts; runs in the model thread, batched by length."""
        return self.model.probabilities(sequences)

    @staticmethod
    def prediction(p_positive: float, facts: dict) -> dict:
        label = int(p_positive >= 0.5)
        return {"label": LABELS[label], "probability": float(p_positive if label else 1.0 - p_positive),
                "probability_positive": float(p_positive), **facts}

    def explain_plan(self, text: str) -> ExplainPlan:
        """The review and its leave-one-word-out variants, ready for one model call."""
        ids, facts = self.encode(text)
        tokens = np.asarray(truncate(tokenize(self.cut(text)[0]), self.maxlen, self.side), dtype=object)
        distinct = list(dict.fromkeys(tokens.tolist()))
        sequences, words, counts = [ids], [], []
        for word in distinct[:self.limits.explain_max_words]:
            keep = tokens != word
            if keep.any():  # a review of one repeated word has nothing left to score
                sequences.append(ids[keep])
                words.append(word)
                counts.append(int(len(keep) - keep.sum()))
        return ExplainPlan(sequences, words, counts, facts, len(distinct))

    def explain_result(self, plan: ExplainPlan, probabilities: np.ndarray, top_k: int) -> dict:
        full = float(probabilities[0])
        effects = full - np.asarray(probabilities[1:], dtype=np.float64)
        order = np.argsort(-np.abs(effects), kind="stable")[:top_k]
        words = [{"word": plan.words[i], "count": plan.counts[i], "effect": float(effects[i])} for i in order]
        return {"prediction": self.prediction(full, plan.facts), "words": words,
                "words_considered": len(plan.words), "words_total": plan.words_total}

"""What the service does with a sentiment model: limit, encode, predict, explain.

Texts longer than `max_text_chars` are cut before tokenizing, from the side the
model itself truncates ("pre": the start, so the ending is kept), and the
answer says `truncated: true`; the model then keeps at most its `maxlen` tokens,
as `rnnkit predict` does.

Explanation by leaving one word out (`rnnkit.tasks.explain`,
as `rnnkit predict --explain` does): the review and all its variants go to the
model in one batched call.
"""

from __future__ import annotations

import numpy as np

from rnnkit.data.vocab import tokenize
from rnnkit.errors import InputError
from rnnkit.serve.limits import ServeLimits
from rnnkit.tasks.sentiment import LABELS
from rnnkit.tasks.explain import explain_plan
from rnnkit.tasks.sentiment.predictor import explain_result, prediction


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

    prediction = staticmethod(prediction)

    def explain_plan(self, text: str) -> dict:
        """The review and its leave-one-word-out variants, ready for one model call."""
        ids, facts = self.encode(text)
        plan = explain_plan(ids, tokenize(self.cut(text)[0]), self.maxlen, self.side, self.limits.explain_max_words)
        return {**plan, "facts": facts}

    def explain_result(self, plan: dict, probabilities: np.ndarray, top_k: int) -> dict:
        return explain_result(plan, probabilities, plan["facts"], top_k)

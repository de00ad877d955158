"""Which words pushed a many-to-one model's prediction: leave each distinct word out and score again.

For each distinct word (all its occurrences at once) the text is re-scored
without it; effect = score(text) - score(text without the word), so a word with
effect > 0 pushed the score up. The text and all its variants go to the model
in one batched call (`explain_plan` makes them, `word_effects` reads the scores).
"""

from __future__ import annotations

import numpy as np

from rnnkit.data.batching import truncate


def explain_plan(ids: np.ndarray, tokens: list[str], maxlen: int, truncating: str, max_words: int) -> dict:
    """The text's ids and its leave-one-word-out variants, ready for one model call.

    `tokens` are the text's words before encoding (cut to `maxlen` from the `truncating` side as the
    ids were); each variant drops every occurrence of one distinct word (of the first `max_words`).
    Returns {"sequences": [ids, variant, ...], "words", "counts", "words_total"}.
    """
    kept = np.asarray(truncate(tokens, maxlen, truncating), dtype=object)
    distinct = list(dict.fromkeys(kept.tolist()))
    sequences, words, counts = [ids], [], []
    for word in distinct[:max_words]:
        keep = kept != word
        if keep.any():  # a text of one repeated word has nothing left to score
            sequences.append(ids[keep])
            words.append(word)
            counts.append(int(len(keep) - keep.sum()))
    return {"sequences": sequences, "words": words, "counts": counts, "words_total": len(distinct)}


def word_effects(plan: dict, scores: np.ndarray, top_k: int) -> list[dict]:
    """The `top_k` words whose removal changed the score most: {"word", "count", "effect"}, largest |effect| first.

    `scores` (1 + variants,) are the model's score of each of the plan's sequences, the full text first.
    """
    effects = float(scores[0]) - np.asarray(scores[1:], dtype=np.float64)
    order = np.argsort(-np.abs(effects), kind="stable")[:top_k]
    return [{"word": plan["words"][i], "count": plan["counts"][i], "effect": float(effects[i])} for i in order]

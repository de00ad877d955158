"""Greedy decoding and beam search, for any engine, over numpy arrays.

A decoder is handed over as two functions (B rows: sentences, or sentences x beams):

    step(tokens (B,), state) -> (log_probs (B, V), state, attention (B, S) or None)
    select(state, rows (B',)) -> state     keep / reorder / repeat rows (beams follow their parent)

`state` is whatever the engine needs (its recurrent state plus the encoded
source); decoding never looks inside it. Each search returns one `Hypothesis`
per sentence: tokens without <s> and </s>.

Beam search ranks finished hypotheses by length-normalised log-probability,
``log P(y) / len(y) ** alpha`` (alpha = 0: raw log-probability, which favours
short outputs; alpha = 1: mean log-probability per token), where len counts
</s>. Only an ending among a sentence's k best continuations counts as
finished. A sentence stops when no live beam can beat its best finished
hypothesis, or when it has k finished ones and no live beam scores above the
k-th at its next length, or at `max_len` tokens (when nothing has finished by
then, the live beams compete unfinished).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

Step = Callable[[np.ndarray, Any], tuple[np.ndarray, Any, np.ndarray | None]]
Select = Callable[[Any, np.ndarray], Any]


@dataclass(frozen=True)
class Hypothesis:
    """One decoded output.

    Attributes:
        tokens: ids, without <s> and </s>.
        log_prob: sum of the log-probabilities of the tokens (and of </s> when finished).
        score: the ranking score (log_prob / length ** alpha for beam search; log_prob for greedy).
        finished: whether </s> was produced within max_len.
        attention: (len(tokens) + finished, S) weights over source steps, or None without attention.
    """

    tokens: list[int]
    log_prob: float
    score: float
    finished: bool
    attention: np.ndarray | None = None


def _check(max_len: int, batch: int) -> None:
    if not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"max_len must be a positive integer; got {max_len!r}")
    if batch < 1:
        raise ValueError("nothing to decode: the batch is empty")


def greedy(step: Step, state: Any, batch: int, bos: int, eos: int, max_len: int) -> list[Hypothesis]:
    """The most likely next token at each step, for `batch` sentences at once."""
    _check(max_len, batch)
    tokens = np.full(batch, bos, dtype=np.int64)
    out = np.zeros((batch, max_len), dtype=np.int64)
    log_probs = np.zeros(batch)
    lengths = np.full(batch, max_len)
    done = np.zeros(batch, dtype=bool)
    attentions = []
    for t in range(max_len):
        logp, state, attention = step(tokens, state)
        tokens = logp.argmax(axis=1)
        log_probs += np.where(done, 0.0, logp[np.arange(batch), tokens])
        out[:, t] = tokens
        if attention is not None:
            attentions.append(attention)
        ended = (tokens == eos) & ~done
        lengths[ended] = t + 1
        done |= ended
        if done.all():
            break
    weights = np.stack(attentions, axis=1) if attentions else None  # (B, steps, S)
    results = []
    for b in range(batch):
        n = int(lengths[b])
        finished = bool(done[b])
        ids = out[b, :n - 1 if finished else n].tolist()
        results.append(Hypothesis(ids, float(log_probs[b]), float(log_probs[b]), finished,
                                  None if weights is None else weights[b, :n]))
    return results


def beam_search(step: Step, select: Select, state: Any, batch: int, bos: int, eos: int, max_len: int,
                beam_size: int = 5, alpha: float = 1.0) -> list[Hypothesis]:
    """The best hypothesis of a `beam_size`-wide beam search, for each of `batch` sentences.

    Rows of the state are laid out sentence-major: row b * K + k is beam k of sentence b.
    """
    _check(max_len, batch)
    if not isinstance(beam_size, (int, np.integer)) or beam_size < 1:
        raise ValueError(f"beam size must be a positive integer; got {beam_size!r}")
    if not alpha >= 0:
        raise ValueError(f"the length-normalisation exponent alpha must be >= 0; got {alpha!r}")
    k = beam_size
    state = select(state, np.repeat(np.arange(batch), k))
    tokens = np.full(batch * k, bos, dtype=np.int64)
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0  # all beams start identical: keep one, or the top-k would be k copies
    history = np.zeros((batch, k, 0), dtype=np.int64)
    attn_history: np.ndarray | None = None  # (batch, k, t, S)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    for t in range(max_len):
        logp, state, attention = step(tokens, state)
        vocab = logp.shape[1]
        total = (scores.reshape(-1, 1) + logp).reshape(batch, k * vocab)
        if attention is not None:
            attention = attention.reshape(batch, k, 1, -1)
            attn_history = attention if attn_history is None else np.concatenate([attn_history, attention], axis=2)
        # the 2k best continuations per sentence: at least k of them do not end in </s>
        width = min(2 * k, k * vocab)
        top = np.argpartition(-total, width - 1, axis=1)[:, :width]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(total, top, 1), axis=1, kind="stable"), 1)
        parents = np.zeros((batch, k), dtype=np.int64)
        next_tokens = np.full((batch, k), eos, dtype=np.int64)
        next_scores = np.full((batch, k), -np.inf)
        for b in range(batch):
            if done[b]:
                continue
            live = 0
            for rank, candidate in enumerate(top[b]):
                score = total[b, candidate]
                if not np.isfinite(score) or live == k:
                    break
                parent, token = divmod(int(candidate), vocab)
                if token == eos:
                    if rank >= k:  # an ending outside the k best continuations is not a contender
                        continue
                    finished[b].append(_hypothesis(history[b, parent], score, t + 1, alpha, True,
                                                   None if attn_history is None else attn_history[b, parent]))
                else:
                    parents[b, live], next_tokens[b, live], next_scores[b, live] = parent, token, score
                    live += 1
            done[b] = live == 0 or _settled(finished[b], next_scores[b], t + 2, max_len, alpha, k)
        if done.all():
            break
        rows = (np.arange(batch)[:, None] * k + parents).reshape(-1)
        state = select(state, rows)
        history = np.concatenate([np.take_along_axis(history, parents[:, :, None], 1), next_tokens[:, :, None]], 2)
        if attn_history is not None:
            attn_history = np.take_along_axis(attn_history, parents[:, :, None, None], 1)
        scores, tokens = next_scores, next_tokens.reshape(-1)
    for b in range(batch):  # out of steps with nothing finished: live beams compete unfinished
        if not finished[b]:
            for beam in range(k):
                if np.isfinite(scores[b, beam]):
                    finished[b].append(_hypothesis(history[b, beam], scores[b, beam], history.shape[2], alpha,
                                                   False, None if attn_history is None else attn_history[b, beam]))
    return [max(hyps, key=lambda h: h.score) for hyps in finished]


def _hypothesis(tokens: np.ndarray, log_prob: float, length: int, alpha: float, finished: bool,
                attention: np.ndarray | None) -> Hypothesis:
    return Hypothesis(tokens.tolist(), float(log_prob), float(log_prob) / max(1, length) ** alpha, finished,
                      None if attention is None else attention.copy())


def _settled(finished: list[Hypothesis], live_scores: np.ndarray, next_len: int, max_len: int, alpha: float,
             k: int) -> bool:
    """Whether a sentence's search can stop.

    Exactly: no live beam can end above the best finished score (log-probabilities
    only fall as a beam grows and the normaliser only grows, so a live beam ends at
    most at its log-probability / max_len ** alpha). Or, with k finished hypotheses,
    when no live beam scores above the k-th best of them at its next length (the
    usual heuristic; exact when alpha = 0).
    """
    if not finished:
        return False
    live = live_scores[np.isfinite(live_scores)]
    if live.size == 0:
        return True
    scores = sorted((h.score for h in finished), reverse=True)
    if scores[0] >= float(live.max()) / max_len ** alpha:
        return True
    return len(scores) >= k and scores[k - 1] >= float(live.max()) / next_len ** alpha

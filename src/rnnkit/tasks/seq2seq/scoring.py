"""Seq2seq scores: teacher-forced loss and token accuracy, greedy exact match, corpus BLEU."""

from __future__ import annotations

from typing import Callable, Sequence

from rnnkit.data.pairs import BOS_ID, EOS_ID, EncodedPairs
from rnnkit.decoding import greedy
from rnnkit.errors import ConfigError
from rnnkit.tasks.seq2seq.data import PairBatch, make_batches

EVAL_BATCH = 256

# (batch) -> (loss summed over the real target tokens, real target tokens, correctly predicted tokens)
TeacherForced = Callable[[PairBatch], tuple[float, int, int]]


def validation_metrics(teacher_forced: TeacherForced, backend, data: EncodedPairs, max_len: int) -> dict:
    """Teacher-forced loss and token accuracy, and greedy exact match, of one model on `data`.

    `teacher_forced` runs the model on a batch with the true previous tokens; `backend` (see
    `rnnkit.tasks.seq2seq.engines`) decodes it greedily, at most `max_len` tokens.
    """
    loss_sum, tokens, correct, exact = 0.0, 0, 0, 0
    for batch in make_batches(data, EVAL_BATCH, rng=None):
        batch_loss, batch_tokens, batch_correct = teacher_forced(batch)
        loss_sum, tokens, correct = loss_sum + batch_loss, tokens + batch_tokens, correct + batch_correct
        hyps = greedy(backend.step, backend.start(batch.src, batch.src_lengths), len(batch.index), BOS_ID, EOS_ID,
                      max_len)
        exact += sum(h.tokens == data.targets[i].tolist() for h, i in zip(hyps, batch.index))
    return {"loss": loss_sum / max(1, tokens), "accuracy": correct / max(1, tokens),
            "exact_match": exact / max(1, len(data))}


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (sacrebleu, 13a tokenization, lower-cased) with any number of references per sentence."""
    try:
        import sacrebleu
    except ImportError:
        raise ConfigError("BLEU needs sacrebleu: pip install 'rnnkit[seq2seq]' (or pip install sacrebleu)") from None
    width = max((len(r) for r in references), default=1)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]
    return float(sacrebleu.corpus_bleu(list(hypotheses), streams, lowercase=True).score)

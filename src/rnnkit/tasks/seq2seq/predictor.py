"""A trained seq2seq bundle, ready to translate, evaluate (exact match, BLEU) and plot its attention.

Input rules for `translate` (also in the README): empty or blank text is an
error; unknown tokens become <unk> (counted in ``unknown``; text with no known
token at all is an error); text longer than the model's ``max_source_len``
tokens is an error unless ``truncate=True``, which keeps the first
``max_source_len`` tokens and reports ``truncated: true``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from rnnkit.bundle import CONFIG_FILE, VOCAB_FILE, Bundle, check_fit, reading_part
from rnnkit.data.pairs import BOS_ID, EOS_ID, UNK_ID, EncodedPairs, PairVocab
from rnnkit.decoding import Hypothesis, beam_search, greedy
from rnnkit.errors import InputError
from rnnkit.tasks.protocol import BasePredictor
from rnnkit.tasks.seq2seq.data import make_batches
from rnnkit.tasks.seq2seq.engines import make_backend
from rnnkit.tasks.seq2seq.scoring import EVAL_BATCH, corpus_bleu
from rnnkit.tasks.seq2seq.settings import MAX_BEAM, MAX_OUTPUT_LEN, Seq2SeqSettings


class Seq2SeqModel(BasePredictor):
    """A trained seq2seq bundle, ready to translate.

        model = rnnkit.tasks.load_predictor("runs/dates")
        model.translate(["the 3rd of March, 2021"])[0]["translation"]   # "2021-03-03"
    """

    task = "seq2seq"
    operations = ("translate", "evaluate")

    def __init__(self, bundle: Bundle, engine: str = "numpy") -> None:
        check_fits(bundle)
        self.bundle, self.engine = bundle, engine
        with reading_part(bundle, VOCAB_FILE):
            self.source = PairVocab.from_json(bundle.vocab.get("source"))
            self.target = PairVocab.from_json(bundle.vocab.get("target"))
        with reading_part(bundle, CONFIG_FILE):
            self.settings = Seq2SeqSettings.from_bundle(bundle.settings)
        self.backend = make_backend(bundle, engine)
        self._model_lock = threading.Lock()  # the numpy engine's layers reuse their buffers: one decode at a time

    def encode(self, text: str, truncate: bool = False) -> tuple[np.ndarray, dict]:
        """Source ids of `text` and facts about it (tokens, unknown, truncated); InputError if unusable."""
        if not isinstance(text, str):
            raise InputError(f"the text must be a string; got {type(text).__name__}")
        ids = self.source.encode(text)
        if not ids:
            raise InputError("the text is empty (or only spaces); give a sentence to translate")
        unknown = sum(i == UNK_ID for i in ids)
        if unknown == len(ids):
            raise InputError(f"none of the {len(ids)} {self.source.level}s of the text are in the model's source "
                             f"vocabulary ({len(self.source)} tokens), so it cannot be translated")
        limit = self.settings.max_source_len
        if len(ids) > limit and not truncate:
            raise InputError(f"the text has {len(ids)} {self.source.level}s, more than this model's maximum of "
                             f"{limit}; shorten it, or pass --truncate to keep the first {limit}")
        return np.asarray(ids[:limit], dtype=np.int64), {"tokens": len(ids), "unknown": unknown,
                                                         "truncated": len(ids) > limit}

    def decode(self, sources: Sequence[np.ndarray], beam: int = 1, max_len: int | None = None,
               alpha: float = 1.0, batch_size: int = EVAL_BATCH) -> list[Hypothesis]:
        """Decode encoded sources (each (S_i,) ids); batches group sources of one length."""
        max_len = self._check_decoding(beam, max_len, alpha)
        dummy = EncodedPairs(list(sources), [np.zeros(1, dtype=np.int64)] * len(sources))
        out: list[Hypothesis | None] = [None] * len(sources)
        for batch in make_batches(dummy, batch_size, rng=None):
            with self._model_lock:  # the encoder's outputs (read at every step) live in buffers a second call reuses
                state = self.backend.start(batch.src, batch.src_lengths)
                if beam == 1:
                    hyps = greedy(self.backend.step, state, len(batch.index), BOS_ID, EOS_ID, max_len)
                else:
                    hyps = beam_search(self.backend.step, self.backend.select, state, len(batch.index), BOS_ID,
                                       EOS_ID, max_len, beam, alpha)
            for i, h in zip(batch.index, hyps):
                out[i] = h
        return out

    def _check_decoding(self, beam: int, max_len: int | None, alpha: float) -> int:
        if not isinstance(beam, int) or not 1 <= beam <= MAX_BEAM:
            raise InputError(f"beam size must be an integer in 1..{MAX_BEAM}; got {beam!r}")
        if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 5.0):
            raise InputError(f"length-normalisation alpha must be in [0, 5]; got {alpha!r}")
        if max_len is None:
            return self.settings.max_target_len + 1
        if not isinstance(max_len, int) or not 1 <= max_len <= MAX_OUTPUT_LEN:
            raise InputError(f"maximum output length must be an integer in 1..{MAX_OUTPUT_LEN}; got {max_len!r}")
        return max_len

    def translate(self, texts: Sequence[str] | str, beam: int = 1, max_len: int | None = None,
                  alpha: float = 1.0, truncate: bool = False) -> list[dict]:
        """One dict per text: translation, score, finished (</s> reached), tokens, unknown, truncated."""
        if isinstance(texts, str):
            texts = [texts]
        encoded = []
        for number, text in enumerate(texts):
            try:
                encoded.append(self.encode(text, truncate))
            except InputError as exc:
                if len(texts) == 1:
                    raise
                raise InputError(f"text {number + 1}: {exc}") from None
        hyps = self.decode([ids for ids, _ in encoded], beam, max_len, alpha) if encoded else []
        return [{"translation": self.target.decode(h.tokens), "score": round(h.score, 6), "finished": h.finished,
                 **facts} for h, (_, facts) in zip(hyps, encoded)]

    def evaluate(self, sources: Sequence[str], references: Sequence[Sequence[str]], beam: int = 1,
                 alpha: float = 1.0) -> dict:
        """Exact match and BLEU (sacrebleu, lower-cased) of translations of `sources`.

        references[i] lists every accepted translation of sources[i]; exact match
        counts a translation equal (after tokenizing) to any of them.
        """
        started = time.perf_counter()
        ids = [self.encode(s, truncate=True)[0] for s in sources]
        hyps = [self.target.decode(h.tokens) for h in self.decode(ids, beam, None, alpha)]
        norm = lambda text: self.target.tokens(text)  # noqa: E731 - compare token sequences, not spacing
        exact = sum(any(norm(h) == norm(r) for r in refs) for h, refs in zip(hyps, references))
        return {"exact_match": exact / max(1, len(sources)), "bleu": corpus_bleu(hyps, references),
                "count": len(sources), "beam": beam, "seconds": round(time.perf_counter() - started, 2),
                "hypotheses": hyps}

    def plot_attention(self, text: str, path: str | Path, beam: int = 1, truncate: bool = False) -> Path:
        """Draw the attention weights (output tokens x source tokens) of one translation as a PNG."""
        if self.bundle.config.attention == "none":
            raise InputError("this model has no attention to plot; train it with --attention")
        ids, _ = self.encode(text, truncate)
        hyp = self.decode([ids], beam)[0]
        source = self.source.vocab.decode(ids.tolist())
        output = self.target.vocab.decode(hyp.tokens) + (["</s>"] if hyp.finished else [])
        return plot_attention_weights(hyp.attention[:len(output)], source, output, path)


def check_fits(bundle: Bundle) -> None:
    """BundleError unless the bundle's model is an encoder-decoder (a source text in, a target text out)."""
    c = bundle.config
    check_fit(bundle, [] if c.architecture == "encoder_decoder" else
              [f"architecture encoder_decoder (a source text in, a target text out), not {c.architecture}"])


def plot_attention_weights(weights: np.ndarray, source: Sequence[str], output: Sequence[str],
                           path: str | Path) -> Path:
    """Save weights (len(output), len(source)) as a heat map with token labels; returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rnnkit.fileio import WRITTEN_BY, atomic_path

    show = lambda tokens: [t if t != " " else "␣" for t in tokens]  # noqa: E731 - make spaces visible
    fig = Figure(figsize=(max(4, 0.35 * len(source) + 2), max(3, 0.35 * len(output) + 1.5)), dpi=100)
    FigureCanvasAgg(fig)  # its own canvas: the caller's matplotlib backend is left as it is
    ax = fig.subplots()
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(source)), show(source), rotation=90)
    ax.set_yticks(range(len(output)), show(output))
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": WRITTEN_BY})
    return path

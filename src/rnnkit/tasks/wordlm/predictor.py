"""A trained word-LM bundle, ready to write and score text."""

from __future__ import annotations

import re
import time
from typing import Iterator

import numpy as np

from rnnkit.bundle import CONFIG_FILE, VOCAB_FILE, Bundle, check_fit, reading_part
from rnnkit.data.vocab import EOS, Vocab, tokenize
from rnnkit.errors import BundleError, InputError
from rnnkit.tasks.lm import sample_ids
from rnnkit.tasks.protocol import BasePredictor
from rnnkit.tasks.wordlm.data import EOS_ID, join
from rnnkit.tasks.wordlm.engines import bundle_functions
from rnnkit.tasks.wordlm.sampling import NEVER_DRAWN, check_generation, render, start_ids, unknown_words
from rnnkit.tasks.wordlm.scoring import score_ids
from rnnkit.tasks.wordlm.settings import WordLMSettings


_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")


class WordLM(BasePredictor):
    """A trained word-LM bundle (`rnnkit pretrain`), ready to write and score text.

        model = rnnkit.load("runs/imdb-lm")                   # numpy engine
        model.generate("This movie", 50, temperature=0.8, seed=1)
        for piece in model.stream("This movie", 50, seed=1):  # " was", " great", "!", ...
            print(piece, end="", flush=True)
        model.evaluate(open("reviews.txt").read())            # {"loss": nats/token, "perplexity": ..., ...}

    Attributes:
        bundle: the loaded bundle; engine: "numpy" or "torch"; vocab: its word `Vocab` (a classifier's kind).
    """

    task = "wordlm"
    operations = ("generate", "evaluate")

    def __init__(self, bundle: Bundle, engine: str = "numpy") -> None:
        check_fits(bundle)
        self.bundle, self.engine = bundle, engine
        with reading_part(bundle, VOCAB_FILE):
            self.vocab = Vocab.from_json(bundle.vocab)
            if len(self.vocab) <= EOS_ID or self.vocab.tokens[EOS_ID] != EOS:
                raise BundleError(f"a word LM's vocabulary has {EOS!r} at id {EOS_ID}; this one does not")
        with reading_part(bundle, CONFIG_FILE):
            self.settings = WordLMSettings.from_bundle(bundle.settings)
        self._step, self._score = bundle_functions(bundle, engine)

    def stream(self, prime: str = "", length: int = 50, temperature: float = 1.0, top_k: int | None = None,
               seed: int | None = None) -> Iterator[str]:
        """Yield the continuation of `prime` one word at a time, as text: " word", "!", or "\\n\\n" where a
        document ends (the prime is not repeated). Words of the prime the model does not know are read as
        <unk> (`unknown_words` lists them). Options are checked before anything runs (InputError)."""
        check_generation(self.vocab, prime, length, temperature, top_k, seed)
        rng = np.random.default_rng(seed)
        ids = sample_ids(self._step, start_ids(self.vocab, prime), length, float(temperature), top_k, rng,
                         NEVER_DRAWN)
        return render(self.vocab, ids, after_prime=bool(tokenize(prime)))

    def generate(self, prime: str = "", length: int = 50, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None) -> str:
        """The continuation of `prime` (without the prime), as one string; see `stream`."""
        return "".join(self.stream(prime, length, temperature, top_k, seed))

    def unknown_words(self, text: str) -> list[str]:
        """The distinct words of `text` outside the vocabulary (the model reads them as <unk>)."""
        return unknown_words(self.vocab, text)

    def evaluate(self, text: str) -> dict:
        """loss (nats/token), perplexity, tokens scored and unknown (targets outside the vocabulary) of `text`;
        blank lines separate its documents (each is followed by <eos>, as in training)."""
        if not isinstance(text, str):
            raise InputError(f"give the text to evaluate as a string; got {type(text).__name__}")
        docs = [self.vocab.encode(tokenize(part)) for part in _BLANK_LINE.split(text)]
        return self.evaluate_ids(join([np.asarray(d, dtype=np.int32) for d in docs if d], EOS_ID))

    def evaluate_ids(self, ids: np.ndarray) -> dict:
        """The metrics of `evaluate` for a token stream ids (M,) (documents joined, each followed by <eos>)."""
        started = time.perf_counter()
        metrics = score_ids(self._score, np.asarray(ids, dtype=np.int64))
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        return metrics

    def describe(self) -> dict:
        return {**super().describe(), "vocabulary": len(self.vocab)}


def check_fits(bundle: Bundle) -> None:
    """BundleError unless the bundle's model is a word LM: many_to_many, left to right, predicting its own
    vocabulary (each generated word is read back as the next input)."""
    c = bundle.config
    check_fit(bundle, [need for ok, need in (
        (c.architecture == "many_to_many",
         f"architecture many_to_many (a prediction at every step), not {c.architecture}"),
        (c.output_size == c.vocab_size, f"output_size equal to vocab_size ({c.vocab_size}: it predicts its own "
                                        f"words), not {c.output_size}"),
        (not c.bidirectional, "one direction (it writes left to right), not bidirectional"),
    ) if not ok])

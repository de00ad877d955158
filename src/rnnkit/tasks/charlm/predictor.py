"""A trained character-LM bundle, ready to generate and score text."""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np

from rnnkit.bundle import CONFIG_FILE, VOCAB_FILE, Bundle, check_fit, reading_part
from rnnkit.data.text import CharVocab
from rnnkit.errors import InputError
from rnnkit.tasks.charlm.engines import bundle_step
from rnnkit.tasks.charlm.sampling import check_generation, sample_ids, start_ids
from rnnkit.tasks.charlm.scoring import score_ids
from rnnkit.tasks.charlm.settings import CharLMSettings
from rnnkit.tasks.protocol import BasePredictor


class CharLM(BasePredictor):
    """A trained character-LM bundle, ready to generate and score text.

        model = rnnkit.load("runs/shakespeare")              # numpy engine
        for piece in model.stream("ROMEO:", 200, temperature=0.8, seed=1):
            print(piece, end="", flush=True)
        model.generate("ROMEO:", 200, temperature=0.8, seed=1)  # the same text, as one string
        model.evaluate(open("other.txt").read())               # {"loss": nats/char, "bpc": ..., ...}

    Attributes:
        bundle: the loaded bundle; engine: "numpy" or "torch"; vocab: its CharVocab.
    """

    task = "charlm"
    operations = ("generate", "evaluate")

    def __init__(self, bundle: Bundle, engine: str = "numpy") -> None:
        check_fits(bundle)
        self.bundle, self.engine = bundle, engine
        with reading_part(bundle, VOCAB_FILE):
            self.vocab = CharVocab.from_json(bundle.vocab)
        with reading_part(bundle, CONFIG_FILE):
            CharLMSettings.from_bundle(bundle.settings)
        self._step = bundle_step(bundle, engine)

    def stream(self, prime: str = "", length: int = 500, temperature: float = 1.0, top_k: int | None = None,
               seed: int | None = None) -> Iterator[str]:
        """Yield the generated continuation of `prime` one character at a time (the prime is not repeated).

        Options are checked before anything runs (InputError). seed=None draws fresh randomness.
        """
        check_generation(self.vocab, prime, length, temperature, top_k, seed)
        rng = np.random.default_rng(seed)
        ids = sample_ids(self._step, start_ids(self.vocab, prime), length, float(temperature), top_k, rng)
        tokens = self.vocab.tokens
        return (tokens[i] for i in ids)

    def generate(self, prime: str = "", length: int = 500, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None) -> str:
        """The continuation of `prime` (without the prime), as one string; see `stream`."""
        return "".join(self.stream(prime, length, temperature, top_k, seed))

    def evaluate(self, text: str) -> dict:
        """loss (nats/char), bpc, accuracy, chars scored and unknown characters of `text`."""
        if not isinstance(text, str) or len(text) < 2:
            raise InputError("give a text of at least 2 characters to evaluate")
        started = time.perf_counter()
        metrics = score_ids(self._step, self.vocab.encode(text))
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        return metrics

    def describe(self) -> dict:
        return {**super().describe(), "characters": "".join(self.vocab.tokens[1:])}


def check_fits(bundle: Bundle) -> None:
    """BundleError unless the bundle's model is a character LM: many_to_many, left to right, predicting its own
    vocabulary (each generated character is read back as the next input)."""
    c = bundle.config
    check_fit(bundle, [need for ok, need in (
        (c.architecture == "many_to_many",
         f"architecture many_to_many (a prediction at every step), not {c.architecture}"),
        (c.output_size == c.vocab_size, f"output_size equal to vocab_size ({c.vocab_size}: it predicts its own "
                                        f"characters), not {c.output_size}"),
        (not c.bidirectional, "one direction (it generates left to right), not bidirectional"),
    ) if not ok])

"""A trained conditional-LM bundle, ready to write texts of a label."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from rnnkit.bundle import CONFIG_FILE, VOCAB_FILE, Bundle, check_fit, reading_part
from rnnkit.data.vocab import EOS, Vocab, tokenize
from rnnkit.errors import BundleError, InputError
from rnnkit.tasks.condlm.data import one_hot
from rnnkit.tasks.condlm.engines import bundle_functions
from rnnkit.tasks.condlm.sampling import FINISHED, sample_rows
from rnnkit.tasks.condlm.settings import CondLMSettings
from rnnkit.tasks.lm import bundle_model
from rnnkit.tasks.protocol import BasePredictor
from rnnkit.tasks.wordlm.data import EOS_ID
from rnnkit.tasks.wordlm.sampling import check_generation, render, start_ids, unknown_words

MAX_TEXTS = 100_000  # most texts one generate_many call writes


class ConditionalLM(BasePredictor):
    """A trained conditional LM (`rnnkit train generate-review`), ready to write a text of a label.

        model = rnnkit.load("runs/review-gen")                      # numpy engine
        model.labels                                                # ("negative", "positive")
        model.generate("positive", length=50, seed=1)               # a review that should read positive
        model.generate("negative", "The plot", 50, temperature=0.8) # ... that starts "The plot"
        model.generate_many("negative", 200, length=60, seed=0)     # 200 texts at once (batched)

    A text ends at <eos> (where the model ends a review) or after `length` words. Bundles of either
    conditioning load (`settings.condition`, from the model's config: "every_step", the label read beside
    every word, or "initial", the label's initial state only, as bundles written before the option).

    Attributes:
        bundle, engine, vocab (its word `Vocab`), settings (CondLMSettings), labels (the label names).
    """

    task = "condlm"
    operations = ("generate",)

    def __init__(self, bundle: Bundle, engine: str = "numpy") -> None:
        with reading_part(bundle, CONFIG_FILE):
            # how the label enters is the model's (config.json), whatever the settings say or leave out
            self.settings = CondLMSettings.from_bundle({**bundle.settings, "condition": bundle.config.condition})
        check_fits(bundle, self.settings)
        self.bundle, self.engine, self.labels = bundle, engine, self.settings.labels
        with reading_part(bundle, VOCAB_FILE):
            self.vocab = Vocab.from_json(bundle.vocab)
            if len(self.vocab) <= EOS_ID or self.vocab.tokens[EOS_ID] != EOS:
                raise BundleError(f"a conditional LM's vocabulary has {EOS!r} at id {EOS_ID}; this one does not")
        self._start, self._step, _ = bundle_functions(bundle_model(bundle, engine), engine, len(self.labels))

    def label_id(self, label: str) -> int:
        """The index of `label`; InputError naming the labels this model writes when it is not one."""
        if isinstance(label, str) and label in self.labels:
            return self.labels.index(label)
        shown = "|".join(self.labels) if len(self.labels) <= 20 else "|".join(self.labels[:20]) + "|..."
        given = "no label" if label is None else f"label {label!r}"
        raise InputError(f"{given}: this model writes texts of the labels {', '.join(self.labels[:20])}"
                         f"{' ...' if len(self.labels) > 20 else ''}; give one with --label {shown}")

    def stream(self, label: str, prime: str = "", length: int = 50, temperature: float = 1.0,
               top_k: int | None = None, seed: int | None = None) -> Iterator[str]:
        """Yield a text of `label` one word at a time (" word", "!"), after `prime` (not repeated); it ends at
        <eos> or after `length` words. Options are checked before anything runs (InputError)."""
        check_generation(self.vocab, prime, length, temperature, top_k, seed)
        rows = self._rows(label, prime, 1, length, temperature, top_k, [np.random.default_rng(seed)])
        ids = (int(drawn[0]) for drawn in rows)
        return render(self.vocab, _until_finished(ids), after_prime=bool(tokenize(prime)))

    def generate(self, label: str, prime: str = "", length: int = 50, temperature: float = 1.0,
                 top_k: int | None = None, seed: int | None = None) -> str:
        """A text of `label` (without the prime), as one string; see `stream`."""
        return "".join(self.stream(label, prime, length, temperature, top_k, seed))

    def generate_many(self, label: str, count: int, prime: str = "", length: int = 50, temperature: float = 1.0,
                      top_k: int | None = None, seed: int | None = None, batch_size: int = 64) -> list[str]:
        """`count` texts of `label`, written `batch_size` at a time; text i draws from Generator(seed + i)
        (seed None: fresh entropy)."""
        check_generation(self.vocab, prime, length, temperature, top_k, seed)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_TEXTS:
            raise InputError(f"count must be a whole number of texts in 1..{MAX_TEXTS}; got {count!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a whole number >= 1; got {batch_size!r}")
        base = np.random.SeedSequence().entropy % (1 << 62) if seed is None else seed
        texts = []
        for first in range(0, count, batch_size):
            rngs = [np.random.default_rng(base + i) for i in range(first, min(count, first + batch_size))]
            words: list[list[int]] = [[] for _ in rngs]
            for drawn in self._rows(label, prime, len(rngs), length, temperature, top_k, rngs):
                for row, i in enumerate(drawn):
                    if i != FINISHED:
                        words[row].append(int(i))
            texts += ["".join(render(self.vocab, ids, after_prime=bool(tokenize(prime)))) for ids in words]
        return texts

    def unknown_words(self, text: str) -> list[str]:
        """The distinct words of `text` outside the vocabulary (the model reads them as <unk>)."""
        return unknown_words(self.vocab, text)

    def describe(self) -> dict:
        return {**super().describe(), "labels": list(self.labels), "vocabulary": len(self.vocab)}

    def _rows(self, label, prime, count, length, temperature, top_k, rngs):
        features = one_hot(np.full(count, self.label_id(label)), len(self.labels))
        return sample_rows(self._step, self._start(features), start_ids(self.vocab, prime), length,
                           float(temperature), top_k, rngs)


def _until_finished(ids):
    for i in ids:
        if i == FINISHED:
            return
        yield i


def check_fits(bundle: Bundle, settings: CondLMSettings) -> None:
    """BundleError unless the bundle's model is a conditional LM of its labels: one_to_many with one input per
    label, predicting its own vocabulary."""
    c = bundle.config
    check_fit(bundle, [need for ok, need in (
        (c.architecture == "one_to_many", f"architecture one_to_many (a label in, a text out), not {c.architecture}"),
        (c.input_size == len(settings.labels), f"input_size {len(settings.labels)} (one per label), not {c.input_size}"),
    ) if not ok])

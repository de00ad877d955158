"""What the service does with a language model (characters or words): check the settings, read the prime,
generate in time.

    POST /v1/generate  {"prime": "ROMEO:", "length": 200, "temperature": 0.8, "top_k": null, "seed": 1}
      -> {"text": "<the continuation, without the prime>", "length": 200, "seed": 1, "temperature": 0.8,
          "top_k": null, "prime_chars": 6, "prime_read": 6, "truncated": false,
          "unknown": 0, "unknown_characters": [], "unknown_handling": "none"}

Settings are checked before the model runs; each bad one is a 422 naming the
fix: `length` 1..max_generate_chars, `temperature` a finite number > 0, `top_k`
1..(characters the model knows) or null, `seed` 0..2**63-1 or null (then one is
drawn, and the answer says which: the same seed and settings give the same
text, on either engine), `prime` a string of at most max_prime_chars characters
(`"truncate": true` reads only its last max_prime_chars characters instead).

Characters of the prime the model never saw in training: with `"unknown":
"skip"` (the default) they are left out of what the model reads, and the answer
names them (`unknown_characters`: character, code point, count) with
`unknown_handling: "skipped"`; `"unknown": "refuse"` answers 422 naming them,
as `rnnkit generate` does. A prime that is empty, or holds only unseen
characters, starts after a newline (`prime_read: 0`), as in the library.

Word language models (`rnnkit pretrain` bundles) answer the same way, counting
words: `length` 1..max_generate_words, `top_k` up to the vocabulary, and the
prime's unknown words (outside the vocabulary) are read as <unk> ("unknown":
"unk", the default, as `rnnkit generate` does), left out ("skip") or refused;
the answer lists them as `unknown_words` (word, count) instead of
`unknown_characters`, and `prime_read` counts the words read.

The generation runs in the model thread, one character at a time, and counts
against the answer timeout: the thread checks the deadline after every
character and stops there, and the answer is 503 saying how far it got. With
`"stream": true` the answer is NDJSON (application/x-ndjson): first a line
with the facts above (without text), then `{"text": "..."}` lines as the model
writes (about every 50 ms), then `{"done": true, "length": N}`, or, when the
deadline passes, a last line `{"error": {"status": 503, "message": ...}}`.

No `from __future__ import annotations` here: FastAPI reads the annotation of
the per-server request model as a class, not as a string.
"""

import asyncio
import json
import math
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from rnnkit.data.vocab import tokenize
from rnnkit.errors import InputError
from rnnkit.serve.guard import ApiError
from rnnkit.serve.limits import ServeLimits
from rnnkit.tasks.charlm import check_prime

DEFAULT_LENGTH = 200       # characters
DEFAULT_WORDS = 50
DEFAULT_TEMPERATURE = 0.8  # as `rnnkit generate`
MAX_SEED = 2**63 - 1
CHUNK_SECONDS = 0.05       # a streamed line carries what the model wrote in about this long
CHUNK_CHARS = 256          # ... or at most this many characters (or words)
GRACE_SECONDS = 0.25       # how long past the deadline the handler waits for the model thread to stop itself
NDJSON = "application/x-ndjson"


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        shown = repr(value)
        return shown if len(shown) <= 30 else shown[:27] + "..."
    if isinstance(value, str):
        return "a string"
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Unit:
    """What a language model writes and counts: characters (charlm) or words (wordlm)."""

    name: str                 # "character" | "word"
    vocabulary: int           # how many it can write: top_k's bound
    max_length: int           # the server's limit on `length`
    handling: tuple           # the "unknown" choices for the prime's unseen units, the default first
    example_prime: str

    @property
    def plural(self) -> str:
        return self.name + "s"

    @classmethod
    def of(cls, model, limits: ServeLimits) -> "Unit":
        if model.task == "wordlm":
            return cls("word", len(model.vocab), limits.max_generate_words, ("unk", "skip", "refuse"), "This movie")
        return cls("character", len(model.vocab) - 1, limits.max_generate_chars, ("skip", "refuse"), "ROMEO:")


def request_model(limits: ServeLimits, unit: Unit) -> type:
    """The /v1/generate request for this server: its bounds (and the OpenAPI schema) carry the server's limits
    and the model's vocabulary; every bad value gets a message naming the fix."""
    most, things, count = unit.max_length, unit.plural, unit.vocabulary
    default_length = min(DEFAULT_LENGTH if unit.name == "character" else DEFAULT_WORDS, most)
    start = "start after a newline" if unit.name == "character" else "start a new document"

    class GenerateRequest(BaseModel):
        """Continue `prime` by `length` characters or words (what the model writes)."""

        model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
            {"prime": unit.example_prime, "length": default_length, "temperature": 0.8, "seed": 1},
            {"prime": "", "length": min(100, most), "temperature": 0.5, "top_k": 5, "stream": True}]})
        prime: str = Field("", description=f"text the model reads first; the answer continues it (without "
                                           f"repeating it); empty: {start}")
        length: int = Field(default_length, ge=1, le=most, description=f"{things} to generate")
        temperature: float = Field(DEFAULT_TEMPERATURE, gt=0, description="> 0; lower is more conservative and "
                                                                           "repetitive, higher more varied")
        top_k: int | None = Field(None, ge=1, le=count,
                                  description=f"sample only among the k most likely {things} (null: all)")
        seed: int | None = Field(None, ge=0, le=MAX_SEED, description="same seed and settings, same text; "
                                                                      "null: one is drawn and returned")
        unknown: Literal[unit.handling] = Field(  # type: ignore[valid-type]
            unit.handling[0], description=f"prime {things} the model never saw: "
                                          + ("unk (read each as <unk>), " if "unk" in unit.handling else "")
                                          + "skip (leave them out, and say which) or refuse (422 naming them)")
        truncate: StrictBool = Field(False, description=f"a prime over {limits.max_prime_chars} characters: "
                                                        "read only its end instead of refusing it")
        stream: StrictBool = Field(False, description="answer NDJSON lines as the text is written")

        @field_validator("prime", mode="before")
        @classmethod
        def _prime(cls, value):
            if not isinstance(value, str):
                raise ValueError(f'must be a string (the text to continue; "" starts after a newline); '
                                 f"got {_kind(value)}")
            return value

        @field_validator("length", mode="before")
        @classmethod
        def _length(cls, value):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise ValueError(f"must be a whole number of {things} from 1 to {most} (this server's "
                                 f"limit); got {_kind(value)}")
            return value

        @field_validator("temperature", mode="before")
        @classmethod
        def _temperature(cls, value):
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or value <= 0):
                raise ValueError(f"must be a finite number > 0 (about 0.5-1.0 is usual; lower is "
                                 f"more conservative); got {_kind(value)}")
            return float(value)

        @field_validator("top_k", mode="before")
        @classmethod
        def _top_k(cls, value):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 1 <= value <= count):
                raise ValueError(f"must be a whole number from 1 to {count} (the model knows "
                                 f"{count} {things}), or null for no cut; got {_kind(value)}")
            return value

        @field_validator("seed", mode="before")
        @classmethod
        def _seed(cls, value):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 0 <= value <= MAX_SEED):
                raise ValueError(f"must be a whole number from 0 to 2**63-1, or null to draw one; "
                                 f"got {_kind(value)}")
            return value

    return GenerateRequest


class UnknownCharacter(BaseModel):
    character: str
    code_point: str = Field(description="e.g. U+00E9")
    count: int = Field(description="occurrences in the prime")


class UnknownWord(BaseModel):
    word: str
    count: int = Field(description="occurrences in the prime")


class GenerateResponse(BaseModel):
    """A character LM's answer."""

    text: str = Field(description="the continuation (the prime is not repeated)")
    length: int = Field(description="characters generated")
    seed: int = Field(description="the seed used (given, or drawn): send it again to get the same text")
    temperature: float
    top_k: int | None
    prime_chars: int = Field(description="characters in the prime as sent")
    prime_read: int = Field(description="characters of the prime the model read (after truncation and skipping "
                                        "unknown ones); 0: it started after a newline")
    truncated: bool = Field(description="the prime was cut to its last max_prime_chars characters")
    unknown: int = Field(description="characters of the (read part of the) prime the model never saw in training")
    unknown_characters: list[UnknownCharacter] = Field(description="those characters, in order of first appearance")
    unknown_handling: Literal["none", "skipped"] = Field(description="skipped: left out of what the model read")


class WordGenerateResponse(BaseModel):
    """A word LM's answer."""

    text: str = Field(description="the continuation (the prime is not repeated)")
    length: int = Field(description="words generated")
    seed: int
    temperature: float
    top_k: int | None
    prime_chars: int = Field(description="characters in the prime as sent")
    prime_read: int = Field(description="words of the prime the model read; 0: it started a new document")
    truncated: bool = Field(description="the prime was cut to its last max_prime_chars characters")
    unknown: int = Field(description="words of the (read part of the) prime outside the vocabulary")
    unknown_words: list[UnknownWord] = Field(description="those words, in order of first appearance")
    unknown_handling: Literal["none", "read as <unk>", "skipped"]


@dataclass
class Plan:
    """A checked request, ready to run: the lazy character stream (nothing computed yet) and the facts."""

    pieces: Iterator[str]
    length: int
    facts: dict
    deadline: float  # time.monotonic() by which the text must be written


class GenerationService:
    """A `CharLM` or `WordLM` behind the service's limits (one per server; the model runs in the server's model
    thread)."""

    def __init__(self, model, limits: ServeLimits) -> None:
        self.model, self.limits = model, limits
        self.vocab = model.vocab
        self.unit = Unit.of(model, limits)
        self.request_model = request_model(limits, self.unit)
        self.response_model = WordGenerateResponse if self.unit.name == "word" else GenerateResponse
        self.running = 0  # generations waiting for or in the model thread

    def describe(self) -> dict:
        """What /v1/model says about generation."""
        unit = self.unit
        about = ({"characters": "".join(self.vocab.tokens[1:])} if unit.name == "character"
                 else {"unit": "words"})
        default_length = DEFAULT_LENGTH if unit.name == "character" else DEFAULT_WORDS
        return {**about, "vocabulary": unit.vocabulary, "max_length": unit.max_length,
                "max_prime_chars": self.limits.max_prime_chars,
                "defaults": {"length": min(default_length, unit.max_length),
                             "temperature": DEFAULT_TEMPERATURE, "top_k": None, "unknown": unit.handling[0]}}

    def admit(self) -> None:
        if self.running >= self.limits.max_queued_texts:
            raise ApiError(503, f"{self.running} generations are already waiting for the model "
                                f"(limit {self.limits.max_queued_texts}); try again shortly", {"Retry-After": "1"})

    def plan(self, request) -> Plan:
        """The prime as the model will read it, the seed, and the facts; InputError (422) naming the fix."""
        prime, truncated, most = request.prime, False, self.limits.max_prime_chars
        if len(prime) > most:
            if not request.truncate:
                raise InputError(f"the prime has {len(prime)} characters, more than this server's limit of {most}; "
                                 'shorten it, or send "truncate": true to read only its last characters')
            prime, truncated = prime[-most:], True
        if self.unit.name == "word":
            return self._plan_words(request, prime, truncated)
        unknown = self.vocab.unknown_characters(prime)
        counts = {}
        if unknown:
            if request.unknown == "refuse":
                try:
                    check_prime(self.vocab, prime)
                except InputError as exc:
                    raise InputError(f'{exc}; or send "unknown": "skip" to leave them out') from None
            unseen = set(unknown)
            for c in prime:
                if c in unseen:
                    counts[c] = counts.get(c, 0) + 1
            prime = "".join(c for c in prime if c not in unseen)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        pieces = self.model.stream(prime, request.length, request.temperature, request.top_k, seed)
        facts = {"length": request.length, "seed": seed, "temperature": request.temperature, "top_k": request.top_k,
                 "prime_chars": len(request.prime), "prime_read": len(prime), "truncated": truncated,
                 "unknown": sum(counts.values()),
                 "unknown_characters": [{"character": c, "code_point": f"U+{ord(c):04X}", "count": counts[c]}
                                        for c in unknown],
                 "unknown_handling": "skipped" if unknown else "none"}
        return Plan(pieces, request.length, facts, time.monotonic() + self.limits.timeout_seconds)

    def _plan_words(self, request, prime: str, truncated: bool) -> Plan:
        """`plan` for a word LM: unknown words read as <unk>, left out, or refused."""
        tokens = tokenize(prime)
        unknown = self.model.unknown_words(prime)
        if unknown and request.unknown == "refuse":
            shown = ", ".join(repr(w) for w in unknown[:10]) + (", ..." if len(unknown) > 10 else "")
            raise InputError(f"the prime has {len(unknown)} word(s) outside this model's vocabulary: {shown}; "
                             'send "unknown": "unk" to read them as <unk>, or "skip" to leave them out')
        unseen = set(unknown)
        counts = Counter(t for t in tokens if t in unseen)  # one pass: a prime may hold thousands
        if unknown and request.unknown == "skip":
            tokens = [t for t in tokens if t not in unseen]
            prime = " ".join(tokens)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        pieces = self.model.stream(prime, request.length, request.temperature, request.top_k, seed)
        handling = "none" if not unknown else "skipped" if request.unknown == "skip" else "read as <unk>"
        facts = {"length": request.length, "seed": seed, "temperature": request.temperature, "top_k": request.top_k,
                 "prime_chars": len(request.prime), "prime_read": len(tokens), "truncated": truncated,
                 "unknown": sum(counts.values()),
                 "unknown_words": [{"word": w, "count": counts[w]} for w in unknown],
                 "unknown_handling": handling}
        return Plan(pieces, request.length, facts, time.monotonic() + self.limits.timeout_seconds)

    def _late(self, produced: int, length: int) -> str:
        things = self.unit.plural
        return (f"the generation did not finish within {self.limits.timeout_seconds:g} s ({produced} of {length} "
                f"{things} written); ask for fewer {things}, or try again when the server is less busy")

    async def _take(self, executor, plan: Plan, stop: threading.Event, most: int,
                    seconds: float) -> list[str] | None:
        """Up to `most` pieces (characters or words) written in the model thread; None when the thread did not
        answer in time."""
        loop = asyncio.get_running_loop()
        wait = max(0.0, plan.deadline - time.monotonic()) + GRACE_SECONDS
        try:
            return await asyncio.wait_for(loop.run_in_executor(executor, take, plan.pieces, plan.deadline, stop,
                                                               most, seconds), timeout=wait)
        except asyncio.TimeoutError:  # still queued behind other work (then it never runs), or stopping
            return None

    async def run(self, plan: Plan, executor) -> dict:
        """The whole answer; ApiError 503 when the deadline passed first."""
        stop = threading.Event()
        self.running += 1
        try:
            pieces = await self._take(executor, plan, stop, plan.length, math.inf)
        finally:
            stop.set()  # a generation whose caller gave up stops after its current character
            self.running -= 1
        if pieces is None or len(pieces) < plan.length:
            raise ApiError(503, self._late(len(pieces or ()), plan.length), {"Retry-After": "1"})
        return {"text": "".join(pieces), **plan.facts}

    async def lines(self, plan: Plan, executor):
        """NDJSON lines (bytes) for a streamed answer; see the module docstring."""
        stop = threading.Event()
        self.running += 1
        try:
            yield _line(plan.facts)
            produced = 0
            while produced < plan.length:
                try:
                    pieces = await self._take(executor, plan, stop, min(CHUNK_CHARS, plan.length - produced),
                                              CHUNK_SECONDS)
                except Exception as exc:  # noqa: BLE001 - the status line went out already; say it in the stream
                    yield _line({"error": {"status": 500, "message": f"the generation failed: {exc}"}})
                    return
                if pieces:
                    produced += len(pieces)
                    yield _line({"text": "".join(pieces)})
                if produced < plan.length and (not pieces or time.monotonic() >= plan.deadline):
                    yield _line({"error": {"status": 503, "message": self._late(produced, plan.length)}})
                    return
            yield _line({"done": True, "length": produced})
        finally:
            stop.set()
            self.running -= 1


def take(pieces: Iterator[str], deadline: float, stop: threading.Event, most: int, seconds: float) -> list[str]:
    """Up to `most` pieces (characters or words) from `pieces` (in the model thread); it stops early at the
    deadline, after `seconds`, or when `stop` is set, so a generation never runs long past its answer's timeout."""
    out = []
    until = min(deadline, time.monotonic() + seconds)
    for piece in pieces:
        out.append(piece)
        if len(out) >= most or stop.is_set() or time.monotonic() >= until:
            break
    return out


def _line(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace") + b"\n"

"""Limits that keep the service's memory and latency bounded, checked once at startup.

Every limit has a safe default; `ServeLimits.validate` refuses settings that
contradict each other (a request the limits allow that the server could then
never answer), the way a misconfigured server should fail at start rather than
hang on its first request.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, fields

from rnnkit.errors import ConfigError
from rnnkit.tasks.charlm import MAX_LENGTH, MAX_PRIME_CHARS

LOOPBACK_DEFAULT = "127.0.0.1"


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask, and how long the server waits.

    Attributes:
        max_body_bytes: largest request body; larger ones get 413 before (or while) they are read.
        max_texts: most texts in one request ("texts": [...]); more get 422 with the count.
        max_text_chars: longer texts are cut to this many characters (from the side the model
            truncates: the start for truncating="pre", so the ending is kept) and say truncated: true.
        explain_max_words: /v1/explain leaves out at most this many distinct words (first ones in the text).
        timeout_seconds: a request head and then its body must each arrive within this (else 408), and
            an answer be ready within it (else 503).
        max_queued_texts: texts waiting for the model across all requests (a generation counts as one);
            beyond it new requests get 503.
        batch_texts: most texts the model runs in one call (requests waiting together are batched).
        batch_wait_ms: under load, how long a batch may wait for as many requests as the last one held
            (0: never; an idle server never waits). See `serve.batcher`.
        max_connections: open connections plus running requests; beyond it uvicorn answers 503.
        max_generate_chars: most characters one /v1/generate request may ask for (character LMs); more get 422.
        max_generate_words: most words one /v1/generate request may ask for (word LMs); more get 422.
            The whole generation must also finish within timeout_seconds (else 503).
        max_prime_chars: longest prime /v1/generate reads; a longer one gets 422, or with "truncate": true
            only its last max_prime_chars characters are read.
        max_head_bytes: largest request head (request line and headers); a larger one gets 431 and the
            connection is closed.
    """

    max_body_bytes: int = 1_048_576
    max_texts: int = 64
    max_text_chars: int = 20_000
    explain_max_words: int = 200
    timeout_seconds: float = 10.0
    max_queued_texts: int = 4096
    batch_texts: int = 256
    batch_wait_ms: float = 2.0
    max_connections: int = 256
    max_generate_chars: int = 2_000
    max_generate_words: int = 500
    max_prime_chars: int = 4_000
    max_head_bytes: int = 65_536

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first limit that is out of range or contradicts another."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "timeout_seconds":
                if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                    raise ConfigError(f"timeout_seconds must be a positive number of seconds; got {value!r}")
            elif f.name == "batch_wait_ms":
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1000:
                    raise ConfigError(f"batch_wait_ms must be 0 (no wait) to 1000 milliseconds; got {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{f.name} must be a positive integer; got {value!r}")
        if self.max_text_chars > self.max_body_bytes:
            raise ConfigError(f"max_text_chars ({self.max_text_chars}) is larger than max_body_bytes "
                              f"({self.max_body_bytes}): such a text could never arrive; lower it or raise the body limit")
        for name, value, library in (("max_generate_chars", self.max_generate_chars, MAX_LENGTH),
                                     ("max_generate_words", self.max_generate_words, MAX_LENGTH),
                                     ("max_prime_chars", self.max_prime_chars, MAX_PRIME_CHARS)):
            if value > library:
                raise ConfigError(f"{name} ({value}) is larger than the most rnnkit generates or reads in one call "
                                  f"({library}); lower it")
        if self.max_prime_chars > self.max_body_bytes:
            raise ConfigError(f"max_prime_chars ({self.max_prime_chars}) is larger than max_body_bytes "
                              f"({self.max_body_bytes}): such a prime could never arrive; lower it or raise the body limit")
        for name, needed in (("max_texts", self.max_texts), ("explain_max_words", self.explain_max_words + 1)):
            if needed > self.max_queued_texts:
                raise ConfigError(f"{name} needs {needed} queue places but max_queued_texts is {self.max_queued_texts}: "
                                  "the largest request allowed could never be queued; raise max_queued_texts")


def check_host(host: str) -> str | None:
    """A warning when `host` exposes the service beyond this machine (None for loopback)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None if host == "localhost" else (
            f"binding to {host!r} may expose the model to other machines; the default {LOOPBACK_DEFAULT} does not")
    if address.is_loopback:
        return None
    if address.is_unspecified:
        return (f"binding to {host} listens on every network interface: anyone who can reach this machine can "
                "use the model. rnnkit serve has no authentication; put it behind a proxy that adds it, "
                f"or use the default --host {LOOPBACK_DEFAULT}")
    return f"binding to {host} makes the model reachable from that network; rnnkit serve has no authentication"

"""Hostile clients against a real `rnnkit serve`, one server per task, counting every answer by status.

    python bench/hostile_clients.py          # ~20-30 s on 2 cores; prints a summary line and the JSON

`run_hostile_clients(work, env)` (bench/reliability.py calls it) writes one small
untrained bundle per task into `work` (sentiment, classify, charlm, wordlm, seq2seq: the
recipe of tests/test_task_commands.py; what is tested is the service's contract,
not the model), then for each starts

    python -m rnnkit.cli serve BUNDLE --port 0 --timeout 2 --max-body-bytes 100000

and sends it a catalogue of hostile requests on every endpoint, its task's and the
others': malformed and wrongly typed JSON, hostile field values (huge, NaN, negative,
lone surrogates, control characters, 1 MB texts), bad encodings and content types,
lying Content-Lengths, chunked bodies, slow and vanishing clients, oversized heads and
URLs, many headers, HTTP/1.0, pipelining, path traversal on the static files, wrong
methods, and bursts of concurrent requests. Well-formed HTTP goes through httpx,
malformed HTTP through raw sockets. Every client wait is bounded (READ_WAIT, WAIT):
a request that gets no answer in time is a hang, named by case.

Afterwards the server must still answer /healthz, answer a normal request of its task
exactly as it did before the catalogue, be alive, and stop with exit status 0 on SIGINT
(`server_stayed_up`: all of it, for every server).

The result counts `server_500s`: answers 500 and any other 5xx but 503 (busy) and
504, plus NDJSON stream lines that report a status 500; `server_500_cases` names the
cases, and `server_500_details` gives the request, endpoint, task and answer of each.
`server_connection_errors` counts requests that were due an answer but whose
connection ended (reset, or closed) without one (`server_connection_error_cases`).
`server_unexpected_statuses` lists the answers of the cases in EXPECTED (408, 413,
431, 405, 422 ...) that got another status: not failures, facts for the limits' owners.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

TIMEOUT = 2                # the server's --timeout: a head, a body, an answer must each come within it
MAX_BODY = 100_000         # the server's --max-body-bytes
READ_WAIT = 10.0           # the longest a client waits for one answer (the server's own deadlines are 2 s)
WAIT = 30.0                # the longest any wait lasts (start-up, stop, a burst)
MAX_HANGS = 3              # a server that leaves this many requests unanswered is not asked further
SENTENCE = "a good film"
CHARS = "abcd \n"
POST_ENDPOINTS = ("/v1/predict", "/v1/explain", "/v1/generate", "/v1/translate")
GET_ENDPOINTS = ("/healthz", "/v1/model", "/openapi.json", "/", "/static/app.js", "/docs")
BASE = {"/v1/predict": {"text": SENTENCE}, "/v1/explain": {"text": SENTENCE, "top_k": 3},
        "/v1/generate": {"prime": "ab", "length": 5, "seed": 1}, "/v1/translate": {"text": "abc"}}
TEXT_FIELD = {"/v1/predict": "text", "/v1/explain": "text", "/v1/generate": "prime", "/v1/translate": "text"}
NUMBER_FIELDS = {
    "/v1/predict": (), "/v1/explain": ("top_k",), "/v1/generate": ("length", "temperature", "top_k", "seed"),
    "/v1/translate": ("beam", "max_len", "alpha")}
OWN = {"sentiment": ("/v1/predict", "/v1/explain"), "classify": ("/v1/predict", "/v1/explain"),
       "charlm": ("/v1/generate",), "wordlm": ("/v1/generate",), "seq2seq": ("/v1/translate",)}
# what a correct answer to BASE holds, per endpoint
ANSWER_KEY = {"/v1/predict": "prediction", "/v1/explain": "words", "/v1/generate": "text",
              "/v1/translate": "translation"}
BIG_INT = "9" * 5001
# raw JSON literals for a number field
HOSTILE_NUMBERS = {
    "zero": "0", "minus_one": "-1", "minus_zero": "-0", "one": "1", "two": "2", "hundred": "100", "101": "101",
    "million": "1000000", "2**63": "9223372036854775808", "2**64": "18446744073709551616",
    "-2**63-1": "-9223372036854775809", "1e309": "1e309", "-1e309": "-1e309", "1e-309": "1e-309",
    "5e-324": "5e-324", "1e-300": "1e-300", "1e300": "1e300", "5001_digits": BIG_INT, "-5001_digits": "-" + BIG_INT,
    "5001_digit_float": "1." + BIG_INT, "NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity",
    "1.5": "1.5", "0.0": "0.0", "1e2": "1e2", "string_5": '"5"', "true": "true", "false": "false", "null": "null",
    "list": "[]", "object": "{}",
}

# the statuses these cases should get (the service's limits); others are listed (server_unexpected_statuses), not failed
EXPECTED = {
    **dict.fromkeys(("cl_lies_longer", "chunked_never_ends", "slow_body_byte_by_byte", "nothing_sent",
                     "head_never_ends", "head_byte_by_byte"), {408}),
    **dict.fromkeys(("cl_over_limit_declared", "body_1MB_sent_whole", "body_over_limit_by_one", "chunked_over_limit",
                     "text_1MB_text", "expect_100_over_limit", "pipelined_over_limit_then_good"), {413}),
    **dict.fromkeys(("head_over_64KiB_one_write", "head_over_64KiB_in_pieces", "head_200KB_one_write", "head_1MB",
                     "headers_10000"), {431}),
    **dict.fromkeys(("url_100KB", "url_100KB_path"), {400, 431}),
    **dict.fromkeys(("concurrent_64_over_max_texts", "texts_max_texts_plus_one"), {404, 422}),
    **{f"method_{m}_on_post_endpoint": {405} for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")},
    **{f"method_{m}_on_get_endpoint": {405} for m in ("POST", "PUT", "DELETE", "PATCH")},
    "path_traversal": {200, 307, 400, 404}, "connections_300": {200, 503}, "concurrent_64_full_requests": {200, 503},
}

# --------------------------------------------------------------------------- bundles

def build_bundles(work: Path) -> dict[str, Path]:
    """task -> a small untrained bundle of that task under `work` (numpy-initialised weights, well under a second)."""
    import numpy as np

    from rnnkit.bundle import save_bundle
    from rnnkit.config import ModelConfig
    from rnnkit.data.pairs import PairVocab
    from rnnkit.data.text import CharVocab
    from rnnkit.numpy_engine.models import init_parameters
    from rnnkit.data.vocab import EOS, Vocab
    from rnnkit.tasks.charlm import lm_config
    from rnnkit.tasks.sentiment import demo_data
    from rnnkit.tasks.wordlm import WordLMSettings, word_lm_config

    def save(task, config, vocab, settings):
        out = work / task
        save_bundle(out, task, config, vocab, init_parameters(config, np.random.default_rng(0)),
                    settings=settings, train={"seed": 0})
        return out

    work.mkdir(parents=True, exist_ok=True)
    _, _, vocab = demo_data(200, seed=0)
    chars = CharVocab.build(CHARS * 20)
    source = PairVocab.build(["abc", "bcd", "dab"], "char", True)
    words = Vocab.build({"a": 3, "good": 2, "film": 2, "ab": 1}, specials=[EOS])
    return {
        "sentiment": save("sentiment", ModelConfig(vocab_size=len(vocab), cell="gru", embedding_dim=8, hidden_size=8),
                          vocab.to_json(), {"maxlen": 50, "vocab_size": None, "dataset": "demo"}),
        "classify": save("classify", ModelConfig(vocab_size=len(vocab), cell="lstm", embedding_dim=8, hidden_size=8,
                                                 output_size=3),
                         vocab.to_json(), {"labels": ["a", "b", "c"], "maxlen": 50, "vocab_size": None}),
        "charlm": save("charlm", lm_config(ModelConfig(vocab_size=1, cell="lstm", embedding_dim=8, hidden_size=8),
                                           len(chars)),
                       chars.to_json(), {"seq_len": 16, "text": None}),
        "wordlm": save("wordlm", word_lm_config(ModelConfig(vocab_size=1, cell="lstm", embedding_dim=8, hidden_size=8),
                                                len(words), WordLMSettings(softmax="adaptive")),
                       words.to_json(), {"seq_len": 16, "text": None}),
        "seq2seq": save("seq2seq", ModelConfig(vocab_size=len(source), target_vocab_size=len(source),
                                               architecture="encoder_decoder", cell="gru", embedding_dim=8,
                                               hidden_size=8, attention="luong"),
                        {"source": source.to_json(), "target": source.to_json()},
                        {"dataset": "reverse", "source_level": "char", "target_level": "char"}),
    }


# --------------------------------------------------------------------------- the server process

@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen
    log: list


def start_server(bundle: Path, env: dict) -> Server:
    """`rnnkit serve BUNDLE --port 0 ...`, once its /healthz answers 200 (bounded by WAIT)."""
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit.cli", "serve", str(bundle), "--port", "0",
                             "--timeout", str(TIMEOUT), "--max-body-bytes", str(MAX_BODY)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
    log: list[str] = []
    ready = threading.Event()
    threading.Thread(target=_drain, args=(proc.stderr, log, ready), daemon=True).start()
    if not ready.wait(WAIT) or proc.poll() is not None:
        proc.kill()
        raise RuntimeError(f"rnnkit serve {bundle} did not start: {''.join(log)}")
    url = next(line for line in log if "at http://" in line).split(" at ")[1].split("/ ")[0]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return Server(url, int(url.rsplit(":", 1)[1]), proc, log)
        except httpx.TransportError:
            time.sleep(0.05)  # polling interval while it starts, not a result
    proc.kill()
    raise RuntimeError(f"rnnkit serve {bundle} never answered /healthz: {''.join(log)}")


def _drain(stream, log: list, ready: threading.Event) -> None:
    for line in stream:
        log.append(line)
        if "at http://" in line:
            ready.set()
    ready.set()


# --------------------------------------------------------------------------- raw HTTP

def parse_responses(buf: bytes, eof: bool) -> list[tuple[int, dict, bytes]]:
    """The complete HTTP/1.x responses at the start of `buf` (interim 1xx ones left out)."""
    out, pos = [], 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = buf[pos:end].split(b"\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            break
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            headers[key.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        start = end + 4
        if 100 <= status < 200:
            pos = start
            continue
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body, nxt = _dechunk(buf, start)
            if nxt is None:
                break
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if len(buf) < start + n:
                break
            body, nxt = buf[start:start + n], start + n
        elif status in (204, 304):
            body, nxt = b"", start
        else:
            if not eof:
                break
            body, nxt = buf[start:], len(buf)
        out.append((status, headers, body))
        pos = nxt
    return out


def _dechunk(buf: bytes, pos: int) -> tuple[bytes, int | None]:
    body = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return b"", None
        size = int(buf[pos:eol].split(b";")[0].strip() or b"0", 16)
        pos = eol + 2
        if size == 0:
            while True:  # trailers, up to an empty line
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return b"", None
                line, pos = buf[pos:eol], eol + 2
                if not line:
                    return b"".join(body), pos
        if len(buf) < pos + size + 2:
            return b"", None
        body.append(buf[pos:pos + size])
        pos += size + 2


@dataclass
class Exchange:
    responses: list
    error: str = ""      # how the connection ended without the answers wanted ("reset", "closed")
    hung: bool = False   # READ_WAIT passed first
    seconds: float = 0.0


def raw_exchange(port: int, parts: list[bytes], *, want: int | None = 1, pause: float = 0.0, after: str = "",
                 wait: float = READ_WAIT) -> Exchange:
    """Send `parts` (`pause` s apart) on one connection and read until `want` responses (None: until EOF).

    after: "close" closes right after sending (no answer read), "reset" closes with RST,
    "shut_wr" half-closes and then reads.
    """
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=wait)
    buf, error, hung, eof = b"", "", False, False
    try:
        for i, part in enumerate(parts):
            if i and pause:
                time.sleep(pause)  # a slow client, not a wait for a result
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError) as exc:
                error = f"send: {type(exc).__name__}"
                break
        if after in ("close", "reset"):
            if after == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return Exchange([], error, False, time.monotonic() - started)
        if after == "shut_wr":
            sock.shutdown(socket.SHUT_WR)
        deadline = started + wait
        while want is None or len(parse_responses(buf, False)) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                hung = True
                break
            sock.settimeout(left)
            try:
                data = sock.recv(1 << 16)
            except socket.timeout:
                hung = True
                break
            except ConnectionResetError:
                error = "reset"
                break
            if not data:
                eof = True
                break
            buf += data
    finally:
        sock.close()
    responses = parse_responses(buf, eof)
    if want is not None and len(responses) < want and not hung and not error:
        error = "closed"
    if want is None and not responses and not hung and not error:
        error = "closed"
    return Exchange(responses, error, hung, time.monotonic() - started)


def http_request(method: str, path: str, body: bytes = b"", headers: dict | None = None, version: str = "HTTP/1.1",
                 close: bool = True, content_length: int | None = None) -> bytes:
    """One request's bytes (Host, Content-Length when there is a body, Connection: close unless told)."""
    lines = [f"{method} {path} {version}".encode("latin-1", "replace"), b"Host: 127.0.0.1"]
    heads = dict(headers or {})
    if body and "Content-Length" not in heads and "Transfer-Encoding" not in heads:
        heads["Content-Length"] = str(len(body) if content_length is None else content_length)
    if close:
        heads.setdefault("Connection", "close")
    for key, value in heads.items():
        lines.append(key.encode("latin-1") + b": " + (value if isinstance(value, bytes) else value.encode("latin-1")))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


JSON_HEADERS = {"Content-Type": "application/json"}


# --------------------------------------------------------------------------- recording

@dataclass
class Answer:
    case: str
    endpoint: str
    status: int | None           # None: no answer
    due: bool = True              # an answer was due
    error: str = ""
    hung: bool = False
    request: str = ""
    response: str = ""
    stream_500: bool = False     # an NDJSON line reported status 500


class Run:
    """One server's catalogue: the answers, and whether to keep going."""

    def __init__(self, task: str, server: Server, info: dict) -> None:
        self.task, self.server, self.info = task, server, info
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.died_after = ""
        self.leaks: list[dict] = []  # static paths that answered with a file from outside the static folder
        self.client = httpx.Client(base_url=server.url, timeout=READ_WAIT,
                                   limits=httpx.Limits(max_connections=200, max_keepalive_connections=20))

    @property
    def port(self) -> int:
        return self.server.port

    def alive(self) -> bool:
        return self.server.proc.poll() is None

    def give_up(self) -> bool:
        return not self.alive() or sum(a.hung for a in self.answers) >= MAX_HANGS

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    # -- well-formed HTTP (httpx)
    def send(self, case: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             shown: str = "", **kwargs) -> None:
        headers = JSON_HEADERS if headers is None and body is not None else headers
        shown = shown or (_show(body) if body is not None else "")
        try:
            response = self.client.request(method, path, content=body, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            self.add(Answer(case, path, None, error=type(exc).__name__, hung=True, request=f"{method} {shown}"))
            return
        except httpx.TransportError as exc:
            self.add(Answer(case, path, None, error=f"{type(exc).__name__}: {exc}", request=f"{method} {shown}"))
            return
        text = response.content[:100_000].decode("utf-8", "replace")
        stream_500 = "x-ndjson" in response.headers.get("content-type", "") and any(
            '"status":500' in line.replace(" ", "") for line in text.splitlines())
        self.add(Answer(case, path, response.status_code, request=f"{method} {shown}", response=text[:400],
                        stream_500=stream_500))

    def post(self, case: str, path: str, body: bytes, content_type: str | None = "application/json", **kwargs):
        self.send(case, "POST", path, body, {} if content_type is None else {"Content-Type": content_type}, **kwargs)

    # -- raw sockets
    def raw(self, case: str, endpoint: str, parts: list[bytes], *, requests: int = 1, want: int | None | str = "all",
            due: bool = True, **kwargs) -> Exchange:
        """`requests`: how many requests `parts` hold (each is counted); `want` responses are read (default: one
        per request when due; None: all until the server closes, the extra ones counted as requests too: the
        server read a request there, e.g. from the leftover of a body shorter than its Content-Length);
        a request left unanswered is a connection error when `due`."""
        shown = _show(b"".join(parts))
        want = (requests if due else 0) if want == "all" else want
        try:
            ex = raw_exchange(self.port, parts, want=want, **kwargs)
        except OSError as exc:  # could not connect
            ex = Exchange([], f"connect: {type(exc).__name__}")
        for i in range(max(requests, len(ex.responses))):
            if i < len(ex.responses):
                status, _, body = ex.responses[i]
                self.add(Answer(case, endpoint, status, due, request=shown,
                                response=body[:400].decode("utf-8", "replace")))
            else:
                self.add(Answer(case, endpoint, None, due, error=ex.error, hung=ex.hung and due, request=shown))
        return ex


def _show(body: bytes | None, most: int = 160) -> str:
    if body is None:
        return ""
    text = repr(body[:most])[2:-1]
    return text + (f"... ({len(body)} bytes)" if len(body) > most else "")


# --------------------------------------------------------------------------- the catalogue

def with_field(endpoint: str, key: str, raw_value: str) -> bytes:
    """BASE[endpoint] with `key` set to the raw JSON text `raw_value`."""
    base = {k: v for k, v in BASE[endpoint].items() if k != key}
    inner = json.dumps(base)[1:-1]
    text = "{" + (inner + ", " if inner else "") + json.dumps(key) + ": " + raw_value + "}"
    return text.encode("utf-8", "surrogatepass")


def body_cases(run: Run, endpoint: str) -> list[tuple[str, bytes]]:
    """(case, JSON body) for `endpoint`: the body as a whole, the text field, the number and flag fields."""
    field = TEXT_FIELD[endpoint]
    max_texts = run.info["limits"]["max_texts"]
    cases = [
        ("json_truncated_object", b"{"), ("json_truncated_value", b'{"text": '), ("json_not_json", b"not json"),
        ("json_single_quotes", b"{'text': 'a good film'}"), ("json_trailing_comma", b'{"text": "a",}'),
        ("json_trailing_garbage", b'{"text": "a"} trailing'), ("json_two_objects", b'{"text": "a"}{"text": "b"}'),
        ("json_bad_escape", b'{"text": "a\\x"}'), ("json_short_unicode_escape", b'{"text": "\\u12"}'),
        ("json_raw_newline_in_string", b'{"text": "a\nb"}'), ("json_raw_nul_in_string", b'{"text": "a\x00b"}'),
        ("json_unterminated_string", b'{"text": "a'), ("json_nul_byte", b"\x00"),
        ("json_top_list", b"[]"), ("json_top_list_of_objects", b'[{"text": "a"}]'), ("json_top_number", b"1"),
        ("json_top_minus_zero", b"-0"), ("json_top_null", b"null"), ("json_top_true", b"true"),
        ("json_top_string", b'"a string"'), ("json_top_1e309", b"1e309"), ("json_top_NaN", b"NaN"),
        ("json_top_5001_digits", BIG_INT.encode()),
        ("json_deep_lists", b"[" * 20_000 + b"]" * 20_000),
        ("json_deep_objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
        ("json_deep_in_field", b'{"text": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"),
        ("json_duplicate_keys", b'{"text": "a", "text": 1}'),
        ("json_empty_body", b""), ("json_whitespace_body", b"  \r\n\t "),
        ("json_utf8_bom", b"\xef\xbb\xbf" + json.dumps(BASE[endpoint]).encode()),
        ("json_utf16", json.dumps(BASE[endpoint]).encode("utf-16")),
        ("json_utf32", json.dumps(BASE[endpoint]).encode("utf-32")),
        ("invalid_utf8_in_string", b'{"' + field.encode() + b'": "\xff\xfe bad"}'),
        ("invalid_utf8_overlong", b'{"' + field.encode() + b'": "\xc0\xaf"}'),
        ("invalid_utf8_truncated", b'{"' + field.encode() + b'": "ab\xe2\x82"}'),
        ("invalid_utf8_encoded_surrogate", b'{"' + field.encode() + b'": "\xed\xa0\x80"}'),
        ("invalid_utf8_latin1_body", json.dumps({field: "caf\u00e9 na\u00efve"}, ensure_ascii=False).encode("latin-1")),
        ("missing_fields_empty_object", b"{}"), ("missing_fields_typo", b'{"txt": "a good film"}'),
        ("both_null", b'{"text": null, "texts": null}'),
        ("text_and_texts", json.dumps({"text": "a", "texts": ["b"]}).encode()),
        ("extra_field", with_field(endpoint, "extra", "1")),
        ("proto_field", with_field(endpoint, "__proto__", '{"admin": true}')),
        ("very_many_fields", ("{" + ", ".join(f'"f{i}": {i}' for i in range(5000)) + "}").encode()),
        ("very_long_key", with_field(endpoint, "k" * 50_000, "1")),
        ("surrogate_key", with_field(endpoint, "\ud800", "1")),
        ("surrogate_key_raw_escape", b'{"\\ud800\\udfff": 1, "\\udc00": "\\ud800"}'),
    ]
    for name, raw_value in {"int": "1", "float": "1.5", "null": "null", "true": "true", "list": "[]",
                            "list_of_str": '["a good film"]', "object": '{"a": 1}', "5001_digits": BIG_INT,
                            "1e309": "1e309", "NaN": "NaN", "-Infinity": "-Infinity"}.items():
        cases.append((f"text_wrong_type_{name}", with_field(endpoint, field, raw_value)))
    texts = {
        "empty": "", "whitespace": " \t\r\n  \u3000\u00a0", "unknown_characters": "\u2603\u2604\u2605\u00e9\u00df",
        "unknown_words": "zzqx vvkw plorf", "control_characters": "\x00\x01\x07\x08\x1b[31m\x7f\x9f\u200b",
        "nul_only": "\x00", "lone_surrogate": "\ud800", "lone_low_surrogate": "\udc00",
        "reversed_surrogates": "a \udc00\ud800 b", "surrogate_with_words": "a good \ud800 film",
        "emoji": "\U0001F600" * 100, "combining": "a" + "\u0301" * 5000, "rtl_override": "\u202egood film\u202c",
        "bom": "\ufeff" + SENTENCE, "noncharacters": "\ufffe\uffff\U0010ffff", "json_in_text": '{"text": "x"}',
        "html": "<script>alert(1)</script>", "format_string": "%s %n {0} {text} ${x}",
        "single_long_word": "a" * 90_000, "newlines_45k": "\n" * 45_000, "90k_text": ("a good film " * 8_200)[:90_000],
        "distinct_words_12k": " ".join([SENTENCE] + [f"w{i}" for i in range(12_000)] + [SENTENCE]),
        "1MB_text": "a good film " * 95_000,
        "just_under_body_limit": "a" * (MAX_BODY - 60),
    }
    for name, value in texts.items():
        cases.append((f"text_{name}", with_field(endpoint, field, json.dumps(value))))
    texts_values = {
        "empty_list": [], "one_empty": [""], "one_whitespace": [" "], "one_unknown": ["\u2603"],
        "max_texts_plus_one": [SENTENCE] * (max_texts + 1), "thousand": ["a"] * 1000,
        "mixed_good_and_empty": [SENTENCE, "", SENTENCE], "surrogates": ["\ud800", SENTENCE],
        "max_texts_long": ["a good film " * 120] * max_texts,
    }
    for name, value in texts_values.items():
        cases.append((f"texts_{name}", json.dumps({"texts": value}).encode()))
    for name, raw_value in {"int_items": "[1, 2]", "null_item": '[null, "a"]', "nested_lists": '[["a"]]',
                            "string": '"a good film"', "object": '{"0": "a"}', "null": "null"}.items():
        cases.append((f"texts_wrong_type_{name}", ('{"texts": ' + raw_value + "}").encode()))
    for key in NUMBER_FIELDS[endpoint]:
        for name, raw_value in HOSTILE_NUMBERS.items():
            cases.append((f"number_{key}_{name}", with_field(endpoint, key, raw_value)))
    if endpoint == "/v1/generate":
        cases += [
            ("generate_stream", with_field(endpoint, "stream", "true")),
            ("generate_stream_max_length", json.dumps({"prime": "ab", "length": 2000, "stream": True}).encode()),
            ("generate_max_length", json.dumps({"prime": "ab", "length": 2000, "seed": 3}).encode()),
            ("generate_stream_tiny_temperature", json.dumps({"prime": "ab", "length": 50, "stream": True,
                                                             "temperature": 5e-324}).encode()),
            ("generate_stream_huge_temperature", json.dumps({"prime": "ab", "length": 50, "stream": True,
                                                             "temperature": 1e308}).encode()),
            ("generate_unknown_refuse", json.dumps({"prime": "\u2603zz", "unknown": "refuse"}).encode()),
            ("generate_unknown_refuse_surrogate", json.dumps({"prime": "\ud800", "unknown": "refuse"}).encode()),
            ("generate_unknown_bad_value", with_field(endpoint, "unknown", '"explode"')),
            ("generate_prime_over_limit", json.dumps({"prime": "a" * 5000}).encode()),
            ("generate_prime_over_limit_truncate", json.dumps({"prime": "ab" * 2500, "truncate": True}).encode()),
            ("generate_prime_surrogates_truncate", json.dumps({"prime": "\ud800" * 5000, "truncate": True}).encode()),
            ("generate_stream_surrogate_prime", json.dumps({"prime": "\ud800ab\udc00" * 1000, "stream": True,
                                                            "length": 20}).encode()),
            ("generate_stream_wrong_type", with_field(endpoint, "stream", '"yes"')),
            ("generate_truncate_int", with_field(endpoint, "truncate", "1")),
            ("generate_top_k_all", json.dumps({"prime": "ab", "length": 5,
                                               "top_k": run.info.get("generation", {}).get("vocabulary", 6)}).encode()),
        ]
    if endpoint == "/v1/translate":
        cases += [
            ("translate_beam16_maxlen1000", json.dumps({"text": "abc", "beam": 16, "max_len": 1000}).encode()),
            ("translate_over_chars_truncate", json.dumps({"text": "abc" * 10_000, "truncate": True}).encode()),
            ("translate_over_chars", json.dumps({"text": "abc" * 10_000}).encode()),
            ("translate_truncate_string", with_field(endpoint, "truncate", '"yes"')),
            ("translate_texts_beam", json.dumps({"texts": ["abc", "\ud800", ""], "beam": 4}).encode()),
        ]
    if endpoint == "/v1/explain":
        cases += [("explain_texts_field", json.dumps({"texts": [SENTENCE]}).encode()),
                  ("explain_top_k_100_long", json.dumps({"text": " ".join([SENTENCE] + [f"w{i}" for i in range(500)]
                                                                           + [SENTENCE]), "top_k": 100}).encode())]
    return cases


CONTENT_TYPES = {
    "ct_none": None, "ct_text_plain": "text/plain", "ct_form": "application/x-www-form-urlencoded",
    "ct_multipart": "multipart/form-data; boundary=xyz", "ct_latin1": "application/json; charset=latin-1",
    "ct_utf16": "application/json; charset=utf-16", "ct_quoted_utf8": 'application/json; charset="utf-8"',
    "ct_upper": "APPLICATION/JSON", "ct_trailing_semicolon": "application/json;",
    "ct_bare_charset": "application/json; charset",
    "ct_many_params": "application/json ; charset=utf-8 ; x=y ;;; =", "ct_jsonx": "application/jsonx",
    "ct_problem_json": "application/problem+json", "ct_star": "*/*", "ct_empty": "",
    "ct_long": "application/json; x=" + "a" * 10_000,
}


def run_body_cases(run: Run) -> None:
    for endpoint in POST_ENDPOINTS:
        for case, body in body_cases(run, endpoint):
            if run.give_up():
                return
            run.post(case, endpoint, body)
        good = json.dumps(BASE[endpoint]).encode()
        for case, content_type in CONTENT_TYPES.items():
            run.post(case, endpoint, good if case != "ct_form" else b"text=a+good+film", content_type)


def run_method_cases(run: Run) -> None:
    for endpoint in POST_ENDPOINTS:
        for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
            run.send(f"method_{method}_on_post_endpoint", method, endpoint,
                     json.dumps(BASE[endpoint]).encode() if method in ("PUT", "PATCH") else None)
    for endpoint in GET_ENDPOINTS:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            run.send(f"method_{method}_on_get_endpoint", method, endpoint, b'{"text": "a"}')
        run.send("method_POST_no_body_on_get_endpoint", "POST", endpoint, None, {})
        run.send("method_HEAD_on_get_endpoint", "HEAD", endpoint)
        run.send("method_GET", "GET", endpoint)
    for method in ("TRACE", "FOO", "get", "PRI", "M" * 1000):
        run.raw(f"method_raw_{method[:8]}", "/healthz", [http_request(method, "/healthz")])
    run.raw("method_CONNECT", "127.0.0.1:443", [http_request("CONNECT", "127.0.0.1:443")])
    run.raw("method_OPTIONS_star", "*", [http_request("OPTIONS", "*")])


TRAVERSALS = [
    "/static/../../etc/passwd", "/static/../../../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static/..%2f..%2f..%2fetc%2fpasswd", "/static/....//....//etc/passwd",
    "/static/..%5c..%5cetc%5cpasswd", "/static/..\\..\\etc\\passwd", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
    "/static/%252e%252e/%252e%252e/etc/passwd", "/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "/static/..;/..;/etc/passwd", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/../app.py",
    "/static/../../../src/rnnkit/serve/app.py", "/static/%2e%2e/app.py", "/static/%00", "/static/index.html%00.js",
    "/static/%ff%fe", "/static/" + "a" * 300, "/static/" + "a/" * 3000, "/static/", "/static", "/static/.",
    "/static/app.js", "/static/app.js/", "/static/APP.JS", "/static/app.js?x=../../etc/passwd", "/static/~",
    "/static/.git/config", "/static/proc/self/environ", "/static/../../proc/self/environ",
]
UNKNOWN_PATHS = [
    "/v2/predict", "/v1/predict/", "/v1/predict/extra", "/v1", "/v1/", "/admin", "/docs", "/redoc",
    "/docs/oauth2-redirect", "/openapi.json?x=%zz", "/v1/model?%00=%00", "/healthz?" + "a=1&" * 2000, "/%", "/%zz",
    "//healthz", "/healthz/", "/healthz%00", "/HEALTHZ", "/\u2603", "/" + "x" * 10_000, "/.env", "/favicon.ico",
]


def run_path_cases(run: Run) -> None:
    for path in TRAVERSALS:
        ex = run.raw("path_traversal", path, [http_request("GET", path)])
        for status, _, body in ex.responses:
            if b"root:" in body or b"import " in body or b"RNNKIT" in body:  # /etc/passwd, a .py file, the environment
                run.leaks.append({"task": run.task, "path": path, "status": status,
                                  "response": body[:200].decode("latin-1")})
    for path in UNKNOWN_PATHS:
        run.raw("path_unknown", path, [http_request("GET", path.encode("utf-8").decode("latin-1"))])
        run.raw("path_unknown_post", path, [http_request("POST", path.encode("utf-8").decode("latin-1"),
                                                         b'{"text": "a"}', JSON_HEADERS)])
    run.raw("path_non_ascii_bytes", "/\\xe2\\x98\\x83",
            [b"GET /\xe2\x98\x83 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
    run.raw("path_no_leading_slash", "healthz", [http_request("GET", "healthz")])
    run.raw("path_absolute_form", "http://evil.example/healthz", [http_request("GET", "http://evil.example/healthz")])
    run.raw("url_60KB", "/v1/model?...", [http_request("GET", "/v1/model?q=" + "a" * 60_000)])
    run.raw("url_100KB", "/healthz?...", [http_request("GET", "/healthz?q=" + "a" * 100_000)])
    run.raw("url_100KB_path", "/aaa...", [http_request("GET", "/" + "a" * 100_000)])
    for name, value in {"ok": "bytes=0-10", "reversed": "bytes=10-0", "past_end": "bytes=999999-",
                        "zero_suffix": "bytes=-0", "garbage": "bytes=abc", "many": "bytes=" + ",".join(
                            f"{i}-{i}" for i in range(2000)), "overlapping": "bytes=0-100,50-150,0-",
                        "unit": "items=0-1", "empty": "bytes=", "huge": "bytes=0-99999999999999999999999999",
                        "negative": "bytes=-99999999999999999999999"}.items():
        run.send(f"static_range_{name}", "GET", "/static/app.js", None, {"Range": value})
    for name, headers in {"if_none_match_star": {"If-None-Match": "*"},
                          "if_modified_since_garbage": {"If-Modified-Since": b"yesterday \xc3\xa9"},
                          "if_range_garbage": {"If-Range": "garbage", "Range": "bytes=0-1"},
                          "accept_encoding_weird": {"Accept-Encoding": "gzip;q=NaN, *;q=-1"}}.items():
        run.send(f"static_{name}", "GET", "/static/app.js", None, headers)


def run_framing_cases(run: Run, pool: ThreadPoolExecutor) -> list:
    """Raw-socket cases for the POST endpoints; the ones that wait for the server's 2 s deadlines run in `pool`."""
    slow = []
    for endpoint in POST_ENDPOINTS:
        good = json.dumps(BASE[endpoint]).encode()
        j = JSON_HEADERS
        run.raw("cl_shorter_than_body", endpoint,
                [http_request("POST", endpoint, good, j, content_length=len(good) - 4)], want=None)
        run.raw("cl_zero_with_body", endpoint, [http_request("POST", endpoint, good, j, content_length=0)], want=None)
        for name, value in {"negative": "-1", "not_a_number": "abc", "exponent": "1e3", "plus": "+20", "spaces": " 20 ",
                            "huge": "9" * 40, "hex": "0x10"}.items():
            run.raw(f"cl_{name}", endpoint, [http_request("POST", endpoint, good, {**j, "Content-Length": value})],
                    want=None)
        run.raw("cl_two_different", endpoint, [http_request("POST", endpoint, good, j).replace(
            b"Content-Length:", b"Content-Length: 5\r\nContent-Length:", 1)], want=None)
        one_chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(good), good)
        chunked_head = {**j, "Transfer-Encoding": "chunked"}
        run.raw("cl_and_chunked", endpoint,
                [http_request("POST", endpoint, one_chunk, {**chunked_head, "Content-Length": "3"})], want=None)
        run.raw("cl_over_limit_declared", endpoint,
                [http_request("POST", endpoint, b"", {**j, "Content-Length": str(MAX_BODY + 1)}).rstrip(b"\r\n")
                 + b"\r\n\r\n"])  # head only: the 413 comes before the body
        run.post("body_1MB_sent_whole", endpoint, b'{"text": "' + b"a" * 1_000_000 + b'"}')
        run.post("body_over_limit_by_one", endpoint, json.dumps({TEXT_FIELD[endpoint]: "a" * (MAX_BODY - 10)}).encode())
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (good[:5], good[5:])) + b"0\r\n\r\n"
        run.raw("chunked_ok", endpoint, [http_request("POST", endpoint, chunked, chunked_head)])
        run.raw("chunked_extensions_trailers", endpoint, [http_request(
            "POST", endpoint, b"%x;ext=1;q=\"x\"\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(good), good),
            {**j, "Transfer-Encoding": "chunked"})])
        run.raw("chunked_bad_size", endpoint, [http_request("POST", endpoint, b"zz\r\nabc\r\n0\r\n\r\n",
                                                            {**j, "Transfer-Encoding": "chunked"})], want=None)
        run.raw("chunked_huge_size", endpoint, [http_request("POST", endpoint, b"f" * 40 + b"\r\nabc\r\n0\r\n\r\n",
                                                             {**j, "Transfer-Encoding": "chunked"})], want=None)
        big = b"".join(b"4000\r\n" + b"a" * 0x4000 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
        run.raw("chunked_over_limit", endpoint, [http_request("POST", endpoint, big, chunked_head)], want=None)
        run.raw("te_gzip_chunked", endpoint, [http_request("POST", endpoint, chunked,
                                                           {**j, "Transfer-Encoding": "gzip, chunked"})], want=None)
        run.raw("te_identity", endpoint, [http_request("POST", endpoint, good, {**j, "Transfer-Encoding": "identity"})],
                want=None)
        run.send("content_encoding_gzip", "POST", endpoint, gzip.compress(good), {**j, "Content-Encoding": "gzip"})
        run.raw("expect_100_continue", endpoint,
                [http_request("POST", endpoint, good, {**j, "Expect": "100-continue"})])
        run.raw("expect_100_over_limit", endpoint, [http_request(
            "POST", endpoint, b"", {**j, "Expect": "100-continue", "Content-Length": str(MAX_BODY * 10)})])
        run.raw("expect_unknown", endpoint, [http_request("POST", endpoint, good, {**j, "Expect": "teapot"})])
        run.raw("ct_non_latin1_bytes", endpoint, [http_request("POST", endpoint, good,
                                                               {"Content-Type": b"application/json; x=\xff\xfe"})])
        run.raw("ct_repeated", endpoint, [http_request("POST", endpoint, good, j).replace(
            b"Content-Type:", b"Content-Type: text/plain\r\nContent-Type:", 1)])
        run.raw("http10_post", endpoint, [http_request("POST", endpoint, good, j, version="HTTP/1.0", close=False)],
                want=None)
        run.raw("http10_post_keepalive", endpoint,
                [http_request("POST", endpoint, good, {**j, "Connection": "keep-alive"}, version="HTTP/1.0")])
        # no answer is due to a client that leaves; the server must not mind
        head_cl = http_request("POST", endpoint, b"", {**j, "Content-Length": "1000"}).rstrip(b"\r\n") + b"\r\n\r\n"
        run.raw("closed_mid_body", endpoint, [head_cl + good[:5]], after="close", due=False)
        run.raw("reset_mid_body", endpoint, [head_cl + good[:5]], after="reset", due=False)
        run.raw("closed_mid_head", endpoint, [b"POST " + endpoint.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Le"],
                after="close", due=False)
        run.raw("closed_right_after_request", endpoint, [http_request("POST", endpoint, good, j)], after="close",
                due=False)
        run.raw("half_closed_after_request", endpoint, [http_request("POST", endpoint, good, j)], after="shut_wr")
        # these wait for the server's deadlines: the answer (408) comes after ~2 s
        slow.append(pool.submit(run.raw, "cl_lies_longer", endpoint,
                                [http_request("POST", endpoint, good, j, content_length=len(good) + 100)]))
        slow.append(pool.submit(run.raw, "chunked_never_ends", endpoint,
                                [http_request("POST", endpoint, b"5\r\n" + good[:5] + b"\r\n",
                                              {**j, "Transfer-Encoding": "chunked"})]))
        slow.append(pool.submit(run.raw, "slow_body_byte_by_byte", endpoint,
                                [http_request("POST", endpoint, b"", {**j, "Content-Length": str(len(good))})
                                 .rstrip(b"\r\n") + b"\r\n\r\n"] + [good[i:i + 1] for i in range(len(good))],
                                pause=0.2))
    slow.append(pool.submit(run.raw, "nothing_sent", "(none)", [b""]))
    slow.append(pool.submit(run.raw, "head_never_ends", "/v1/predict", [b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n"]))
    slow.append(pool.submit(run.raw, "head_byte_by_byte", "/healthz",
                            [bytes([c]) for c in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaa\r\n\r\n"],
                            pause=0.1))
    slow.append(pool.submit(run.raw, "keepalive_then_partial_head", "/healthz",
                            [http_request("GET", "/healthz", close=False), b"GET /healthz HTTP/1.1\r\n"],
                            pause=0.3, requests=2))
    return slow


def run_protocol_cases(run: Run) -> None:
    hz = http_request("GET", "/healthz")

    def headers(extra: bytes) -> bytes:  # GET /healthz with `extra` header lines after Host
        return hz.replace(b"Host: 127.0.0.1", b"Host: 127.0.0.1" + extra)

    cases = {
        "garbage_bytes": b"\x00\xff" * 100 + b"\r\n\r\n",
        "tls_client_hello": bytes.fromhex("160301020001") + os.urandom(200),
        "crlf_only": b"\r\n\r\n", "http09_request": b"GET /healthz\r\n\r\n",
        "http2_version": b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
        "http99_version": b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        "http2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "bare_lf_line_endings": b"GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n",
        "header_without_colon": headers(b"\r\nNoColonHere"),
        "header_name_with_space": headers(b"\r\nBad Name: x"),
        "header_empty_name": headers(b"\r\n: x"),
        "header_obs_fold": headers(b"\r\nX-Fold: a\r\n b"),
        "header_nul_value": headers(b"\r\nX-Nul: a\x00b"),
        "header_high_bytes": headers(b"\r\nX-High: \xff\xfe\x80"),
        "header_space_before_colon": headers(b"\r\nX-A : b"),
        "header_60KB_value": headers(b"\r\nX-Big: " + b"a" * 60_000),
        "head_over_64KiB_one_write": headers(b"\r\nX-Big: " + b"a" * 70_000),
        "head_200KB_one_write": headers(b"\r\nX-Big: " + b"a" * 200_000),
        "head_1MB": headers(b"\r\nX-Big: " + b"a" * 1_000_000),
        "headers_1000": headers(b"".join(b"\r\nX-%d: v" % i for i in range(1000))),
        "headers_5000": headers(b"".join(b"\r\nX-%d: v" % i for i in range(5000))),
        "headers_10000": headers(b"".join(b"\r\nX-%d: v" % i for i in range(10_000))),
        "headers_repeated_host": hz.replace(b"Host: 127.0.0.1", b"Host: a\r\nHost: b\r\nHost: " + b"h" * 10_000),
        "no_host_http11": b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
        "cookies_many": headers(b"\r\nCookie: " + b"; ".join(b"c%d=%d" % (i, i) for i in range(3000))),
        "upgrade_websocket": headers(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"),
        "upgrade_h2c": headers(b"\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA"),
        "x_forwarded_spoof": headers(b"\r\nX-Forwarded-For: \xff, ::1, " + b"1," * 1000),
        "http10_get": b"GET /healthz HTTP/1.0\r\n\r\n", "http10_get_model": b"GET /v1/model HTTP/1.0\r\n\r\n",
        "http10_get_page": b"GET / HTTP/1.0\r\n\r\n",
    }
    for case, data in cases.items():
        run.raw(case, "/healthz", [data])
    big = headers(b"\r\nX-Big: " + b"a" * 100_000)
    run.raw("head_over_64KiB_in_pieces", "/healthz", [big[i:i + 4096] for i in range(0, len(big), 4096)], pause=0.002)
    # pipelining: several requests in one write, answered in order on one connection
    keep = http_request("GET", "/healthz", close=False)
    run.raw("pipelined_10_healthz", "/healthz", [keep * 9 + hz], requests=10)
    run.raw("pipelined_100_healthz", "/healthz", [keep * 99 + hz], requests=100)
    for endpoint in POST_ENDPOINTS:
        body = json.dumps(BASE[endpoint]).encode()
        one = http_request("POST", endpoint, body, JSON_HEADERS, close=False)
        last = http_request("POST", endpoint, body, JSON_HEADERS)
        run.raw("pipelined_5_posts", endpoint, [one * 4 + last], requests=5)
        run.raw("pipelined_post_then_garbage", endpoint, [one + b"GARBAGE\r\n\r\n"], requests=2)
        run.raw("pipelined_bad_json_then_good", endpoint,
                [http_request("POST", endpoint, b"{", JSON_HEADERS, close=False) + last], requests=2)
        run.raw("pipelined_over_limit_then_good", endpoint, [
            http_request("POST", endpoint, b"", {**JSON_HEADERS, "Content-Length": str(MAX_BODY + 1)}, close=False)
            .rstrip(b"\r\n") + b"\r\n\r\n" + http_request("POST", endpoint, body, JSON_HEADERS)], want=1)


def run_stream_disconnects(run: Run) -> None:
    """Clients that ask for a streamed generation (or any answer) and leave after its first bytes."""
    for _ in range(8):
        body = json.dumps({"prime": "ab", "length": 2000, "stream": True}).encode()
        run.raw("stream_client_leaves_early", "/v1/generate",
                [http_request("POST", "/v1/generate", body, JSON_HEADERS)], want=0, due=False)
        sock = socket.create_connection(("127.0.0.1", run.port), timeout=READ_WAIT)
        try:
            sock.sendall(http_request("POST", "/v1/generate", body, JSON_HEADERS))
            sock.recv(100)
        except OSError:
            pass
        finally:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        run.add(Answer("stream_client_resets_after_first_bytes", "/v1/generate", None, due=False))


def run_bursts(run: Run) -> None:
    """Concurrent requests: 64 with max_texts+1 texts on every endpoint, a burst of full ones, 300 connections."""
    max_texts = run.info["limits"]["max_texts"]
    over = json.dumps({"texts": [SENTENCE] * (max_texts + 1)}).encode()
    with ThreadPoolExecutor(64) as pool:
        for endpoint in POST_ENDPOINTS:
            list(pool.map(lambda _: run.post("concurrent_64_over_max_texts", endpoint, over), range(64)))
        for endpoint in OWN[run.task]:
            body = {"/v1/predict": {"texts": ["a good film " * 20] * max_texts}, "/v1/explain": BASE[endpoint],
                    "/v1/generate": {"prime": "ab", "length": 300},
                    "/v1/translate": {"texts": ["abcdab"] * max_texts}}[endpoint]
            data = json.dumps(body).encode()
            list(pool.map(lambda _: run.post("concurrent_64_full_requests", endpoint, data), range(64)))
    # more connections than --max-connections (256): the extra ones may get 503, none a 500
    socks = []
    for _ in range(300):
        try:
            sock = socket.create_connection(("127.0.0.1", run.port), timeout=READ_WAIT)
            sock.sendall(http_request("GET", "/healthz"))
            socks.append(sock)
        except OSError as exc:
            run.add(Answer("connections_300", "/healthz", None, error=f"connect: {type(exc).__name__}"))
    deadline = time.monotonic() + WAIT
    for sock in socks:
        buf, error, hung = b"", "", False
        try:
            while not parse_responses(buf, False):
                left = deadline - time.monotonic()
                if left <= 0:
                    hung = True
                    break
                sock.settimeout(left)
                data = sock.recv(1 << 16)
                if not data:
                    break
                buf += data
        except socket.timeout:
            hung = True
        except OSError as exc:
            error = type(exc).__name__
        finally:
            sock.close()
        got = parse_responses(buf, True)
        run.add(Answer("connections_300", "/healthz", got[0][0] if got else None,
                       error=error or ("" if got else "closed"), hung=hung, request="GET /healthz (300 connections)",
                       response=got[0][2][:200].decode("latin-1") if got else ""))


# --------------------------------------------------------------------------- one server, all of it

def normal_answer(run: Run) -> dict | None:
    """The answer to the task's normal request (BASE), when it is a 200 holding what it should."""
    endpoint = OWN[run.task][0]
    try:
        response = run.client.post(endpoint, json=BASE[endpoint])
        answer = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return answer if response.status_code == 200 and ANSWER_KEY[endpoint] in answer else None


def check_healthy(run: Run, before: dict | None) -> dict:
    """/healthz 200, the normal request answered as before the catalogue, the process alive."""
    facts = {"alive": run.alive(), "healthz": False, "normal_request": False}
    try:
        facts["healthz"] = run.client.get("/healthz").json() == {"status": "ok"}
    except (httpx.HTTPError, ValueError):
        pass
    facts["normal_request"] = before is not None and normal_answer(run) == before
    return facts


def stop_server(server: Server) -> int | None:
    if server.proc.poll() is not None:
        return server.proc.returncode
    server.proc.send_signal(signal.SIGINT)
    try:
        return server.proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=WAIT)
        return None


def run_one(task: str, bundle: Path, env: dict) -> dict:
    started = time.monotonic()
    server = start_server(bundle, env)
    try:
        info = httpx.get(f"{server.url}/v1/model", timeout=READ_WAIT).json()
        run = Run(task, server, info)
        before = normal_answer(run)
        steps = [run_body_cases, run_method_cases, run_path_cases, run_protocol_cases, run_stream_disconnects,
                 run_bursts]
        with ThreadPoolExecutor(24) as pool:
            slow = []
            for step in steps:
                if run.give_up():
                    break
                if step is run_bursts:
                    for future in slow:  # the slow clients first, so the bursts do not cost them their deadlines
                        future.result(timeout=WAIT + READ_WAIT)
                    slow = []
                step(run)
                if step is run_body_cases:
                    slow = run_framing_cases(run, pool)
                if not run.alive() and not run.died_after:
                    run.died_after = step.__name__
            for future in slow:
                future.result(timeout=WAIT + READ_WAIT)
        health = check_healthy(run, before)
        run.client.close()
    except BaseException:
        stop_server(server)
        raise
    exit_code = stop_server(server)
    health["exit_code"] = exit_code
    log = "".join(server.log)
    return {"task": task, "answers": run.answers, "leaks": run.leaks, "health": health, "died_after": run.died_after,
            "stayed_up": health["alive"] and health["healthz"] and health["normal_request"] and exit_code == 0,
            "log_errors": [line.rstrip() for line in server.log if "Traceback" in line or "ERROR" in line
                           or "Exception" in line][:20],
            "log_tail": log[-2000:] if "Traceback" in log else "", "seconds": round(time.monotonic() - started, 1)}


def unexpected(answers: list) -> dict:
    """{"task:case": {status: n}} for answers of EXPECTED cases with another status."""
    out: dict = {}
    for task, a in answers:
        if a.status is not None and a.case in EXPECTED and a.status not in EXPECTED[a.case]:
            counts = out.setdefault(f"{task}:{a.case}", {})
            counts[str(a.status)] = counts.get(str(a.status), 0) + 1
    return dict(sorted(out.items()))


def is_500(answer: Answer) -> bool:
    return answer.stream_500 or (answer.status is not None and answer.status >= 500 and answer.status not in (503, 504))


def run_hostile_clients(work: Path, env: dict) -> dict:
    """The catalogue against a server of every task; see the module docstring for what it returns."""
    started = time.monotonic()
    bundles = build_bundles(Path(work) / "hostile-bundles")
    per_task = []
    for task, bundle in bundles.items():
        try:
            per_task.append(run_one(task, bundle, env))
        except Exception as exc:  # noqa: BLE001 - a server that would not start, or a client bug: recorded, not raised
            per_task.append({"task": task, "answers": [], "leaks": [], "died_after": "", "stayed_up": False,
                             "health": {"error": f"{type(exc).__name__}: {exc}"[:2000]}, "log_errors": [],
                             "seconds": None})
    answers = [(r["task"], a) for r in per_task for a in r["answers"]]
    counts = Counter(str(a.status) for _, a in answers if a.status is not None)
    failures = [(task, a) for task, a in answers if is_500(a)]
    lost = [(task, a) for task, a in answers if a.status is None and a.due and not a.hung]
    hung = [(task, a) for task, a in answers if a.hung]

    def detail(task, a):
        return {"task": task, "case": a.case, "endpoint": a.endpoint, "status": a.status, "error": a.error,
                "request": a.request[:300], "response": a.response[:300]}

    result = {
        "server_requests": len(answers),
        "server_500s": len(failures),
        "server_status_counts": dict(sorted(counts.items())),
        "server_no_answer_expected": sum(1 for _, a in answers if a.status is None and not a.due),
        "server_connection_errors": len(lost),
        "server_connection_error_cases": sorted({f"{task}:{a.case}" for task, a in lost}),
        "server_hangs": len(hung),
        "server_hung_cases": sorted({f"{task}:{a.case}" for task, a in hung}),
        "server_cases": len({a.case for _, a in answers}),
        "server_stayed_up": all(r["stayed_up"] for r in per_task),
        "server_500_cases": sorted({f"{task}:{a.endpoint}:{a.case}" for task, a in failures}),
        "server_500_details": [detail(task, a) for task, a in failures][:50],
        "server_connection_error_details": [detail(task, a) for task, a in lost][:50],
        "server_traversal_leaks": [leak for r in per_task for leak in r["leaks"]],
        "server_unexpected_statuses": unexpected(answers),
        "server_per_task": {r["task"]: {"requests": len(r["answers"]), "seconds": r["seconds"], **r["health"],
                                        "died_after": r["died_after"], "log_errors": r["log_errors"],
                                        "log_tail": r.get("log_tail", "")}
                            for r in per_task},
        "seconds": round(time.monotonic() - started, 1),
    }
    servers = len(result["server_per_task"])
    print(f"hostile clients: {result['server_requests']} requests in {result['server_cases']} cases on {servers} servers, "
          f"{result['server_500s']} answers 500, {result['server_connection_errors']} connections lost, "
          f"{result['server_hangs']} hangs, stayed up: {result['server_stayed_up']} ({result['seconds']} s)",
          file=sys.stderr)
    return result


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rnnkit-hostile-") as tmp:
        print(json.dumps(run_hostile_clients(Path(tmp), dict(os.environ)), indent=2, ensure_ascii=False))

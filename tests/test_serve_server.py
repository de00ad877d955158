"""`rnnkit serve` as a real process on 127.0.0.1: raw-socket abuse, a bounded load test, a real browser."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="rnnkit serve needs the serve extra: pip install -e '.[serve]'")
httpx = pytest.importorskip("httpx")

import rnnkit.numpy_engine
from rnnkit.tasks import load_predictor

ENGINE = "numpy" if hasattr(rnnkit.numpy_engine, "build_model") else "torch"
BODY_LIMIT = 100_000
TIMEOUT = 2
HANG = 120  # seconds: bounds a hang (a client's wait for an answer), never decides a result
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REVIEW = "The plot was wonderful and the cast was great, but the ending was a boring mess."


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen
    log: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


def start_server(*args: str, timeout: float = 120) -> Server:
    """Run `rnnkit serve ARGS --port 0` and wait until /healthz answers."""
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit.cli", "serve", *args, "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    started = time.monotonic()
    ready = threading.Event()
    threading.Thread(target=_drain, args=(proc.stderr, log, ready), daemon=True).start()
    if not ready.wait(timeout) or proc.poll() is not None:
        proc.kill()
        raise AssertionError(f"rnnkit serve did not start: {''.join(log)}")
    url = next(line for line in log if "at http://" in line).split(" at ")[1].split("/ ")[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return Server(url, int(url.rsplit(":", 1)[1]), proc, log, started)
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"rnnkit serve never answered /healthz: {''.join(log)}")


def _drain(stream, log: list[str], ready: threading.Event) -> None:
    for line in stream:
        log.append(line)
        if "at http://" in line:
            ready.set()
    ready.set()


def stop(srv: Server) -> None:
    srv.proc.send_signal(signal.SIGINT)
    assert srv.proc.wait(timeout=90) == 0, "".join(srv.log)  # Ctrl-C is a clean stop


@pytest.fixture(scope="module")
def server(demo_bundle):
    """Default limits."""
    srv = start_server(str(demo_bundle[0]), "--engine", ENGINE)
    yield srv
    stop(srv)


@pytest.fixture(scope="module")
def strict_server(demo_bundle):
    """A short timeout and a small body limit, for the abuse tests."""
    srv = start_server(str(demo_bundle[0]), "--engine", ENGINE, "--timeout", str(TIMEOUT),
                       "--max-body-bytes", str(BODY_LIMIT), "--max-text-chars", "5000")
    yield srv
    stop(srv)


@pytest.fixture(scope="module")
def model(demo_bundle):
    return load_predictor(demo_bundle[0], engine=ENGINE)


def predict(server: Server, text: str) -> dict:
    response = httpx.post(f"{server.url}/v1/predict", json={"text": text}, timeout=HANG)
    assert response.status_code == 200, response.text
    return response.json()["prediction"]


def raw_request(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANG)
    sock.sendall(head)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


# --------------------------------------------------------------------------- the process


def test_numpy_engine_serves_without_loading_torch(server, model):
    if ENGINE != "numpy":
        pytest.skip("the numpy engine has not landed yet (rnnkit.numpy_engine.build_model)")
    assert predict(server, REVIEW)["probability_positive"] == pytest.approx(
        model.predict([REVIEW])[0]["probability_positive"], abs=1e-6)
    httpx.post(f"{server.url}/v1/explain", json={"text": REVIEW}, timeout=HANG).raise_for_status()
    with open(f"/proc/{server.proc.pid}/maps") as maps:
        libraries = {line.split()[-1] for line in maps if "/" in line}
    assert not [lib for lib in libraries if "torch" in lib], "the numpy-engine server mapped torch libraries"
    modules = subprocess.run([sys.executable, "-c", (
        "import sys, rnnkit.cli\n"
        "from rnnkit.serve.app import create_app\nfrom rnnkit.tasks import load_predictor\n"
        f"create_app(load_predictor({str(model.bundle.path)!r}))\nprint('torch' in sys.modules)")],
        capture_output=True, text=True, timeout=120)
    assert modules.stdout.strip() == "False", modules.stderr


def test_chunked_upload_over_the_limit_is_cut_off_early(strict_server):
    """No Content-Length: the server counts as it reads and answers 413 while the upload is still going.

    The client sends twice the limit and then waits, the upload unfinished (no last chunk): a server that
    read to the end before counting would never answer 413 (its body timeout would, with 408)."""
    server = strict_server
    sock = raw_request(server.port, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n")
    chunk, sent = b" " * 10_000, 0
    while sent <= 2 * BODY_LIMIT:
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:  # the server closed the connection after answering
            break
        sent += len(chunk)
    status, body = read_response(sock)
    sock.close()
    assert status == 413 and "limit of 100000 bytes" in body["error"]["message"]
    assert predict(server, "great")["label"] == "positive"  # still serving


def test_declared_oversize_body_is_refused_before_it_is_sent(strict_server):
    server = strict_server
    sock = raw_request(server.port, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    b"Content-Length: 50000000\r\n\r\n")
    status, body = read_response(sock)
    sock.close()
    assert status == 413 and "50000000 bytes" in body["error"]["message"]


def test_a_slow_client_gets_408_and_the_server_stays_up(strict_server):
    server = strict_server
    started = time.monotonic()
    sock = raw_request(server.port, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    b'Content-Length: 100\r\n\r\n{"text": "gre')
    status, body = read_response(sock)
    sock.close()
    assert status == 408 and "did not arrive within 2 s" in body["error"]["message"]
    assert TIMEOUT - 0.1 < time.monotonic() - started < TIMEOUT + 60  # never early; slack for a busy machine
    assert predict(server, "great")["label"] == "positive"


@pytest.mark.parametrize("head", [b"", b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n"])
def test_a_connection_without_a_complete_request_head_is_closed(strict_server, head):
    """An idle connection, or headers sent slowly, would otherwise hold a connection slot for ever."""
    started = time.monotonic()
    sock = raw_request(strict_server.port, head)
    reply = sock.recv(100)
    assert reply.startswith(b"HTTP/1.1 408") and sock.recv(100) == b""  # answered, then closed
    sock.close()
    assert TIMEOUT - 0.1 < time.monotonic() - started < TIMEOUT + 60  # never early; slack for a busy machine
    assert predict(strict_server, "great")["label"] == "positive"


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def _send_huge_head(port: int, megabytes: int) -> bytes:
    """Send a request whose head grows by `megabytes` MB of headers; what the server answered before closing."""
    sock = raw_request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    header = b"X-Padding: " + b"a" * 8000 + b"\r\n"
    try:
        for _ in range(megabytes * 1_000_000 // len(header)):
            sock.sendall(header)
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed by the server, as it should be
    reply = b""
    try:
        while chunk := sock.recv(4096):
            reply += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return reply


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_huge_request_heads_get_431_and_do_not_grow_the_server(strict_server):
    """8 connections sending 10 MB of headers each: each is answered 431 and closed; memory stays bounded."""
    before = _rss_bytes(strict_server.proc.pid)
    replies: list[bytes] = []
    threads = [threading.Thread(target=lambda: replies.append(_send_huge_head(strict_server.port, 10)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG)
    assert len(replies) == 8 and all(r.startswith(b"HTTP/1.1 431") for r in replies), replies
    assert _rss_bytes(strict_server.proc.pid) - before < 40_000_000
    # a head over the limit in a single write is refused too, before the parser keeps it
    sock = raw_request(strict_server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000
                       + b"\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 431")
    sock.close()
    # a large but reasonable head (40 KB of cookies) is served
    response = httpx.get(f"{strict_server.url}/healthz", headers={"Cookie": "c=" + "x" * 40_000}, timeout=HANG)
    assert response.status_code == 200
    assert predict(strict_server, "great")["label"] == "positive"


def test_load_thousands_of_requests_from_16_clients_none_fails(server, model):
    """2,000 requests (single, batched, explain) from 16 concurrent connections; every answer checked."""
    rng = random.Random(0)
    words = "the plot cast film acting ending was great wonderful boring mess funny worst best a and but".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 60))) for _ in range(64)]
    expected = np.array([p["probability_positive"] for p in model.predict(texts)])
    total, clients = 2000, 16
    failures: list[str] = []
    done = []

    async def client(worker: int) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=HANG) as http:
            for n in range(worker, total, clients):
                index = n % len(texts)
                kind = n % 20
                if kind < 16:
                    body, path = {"text": texts[index]}, "/v1/predict"
                elif kind < 19:
                    body, path = {"texts": [texts[(index + k) % len(texts)] for k in range(8)]}, "/v1/predict"
                else:
                    body, path = {"text": texts[index], "top_k": 3}, "/v1/explain"
                response = await http.post(path, json=body)
                if response.status_code != 200:
                    failures.append(f"{path} {response.status_code} {response.text[:200]}")
                    continue
                answer = response.json()
                got = [p["probability_positive"] for p in answer.get("predictions", [answer.get("prediction")])]
                want = expected[[(index + k) % len(texts) for k in range(len(got))]]
                if not np.allclose(got, want, atol=1e-5):
                    failures.append(f"{path} answered {got[:2]}, expected {want[:2]}")
                done.append(1)

    async def run_all() -> None:
        await asyncio.wait_for(asyncio.gather(*(client(w) for w in range(clients))), timeout=600)

    started = time.perf_counter()
    asyncio.run(run_all())
    seconds = time.perf_counter() - started
    print(f"load test: {total} requests in {seconds:.1f} s ({total / seconds:.0f} req/s), {len(failures)} failed")
    assert not failures, failures[:5]
    assert len(done) == total


# --------------------------------------------------------------------------- the command line


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnkit.cli", "serve", *args], capture_output=True, text=True, timeout=120)


def test_cli_checks_limits_before_loading_and_warns_on_all_interfaces(tmp_path):
    result = run_cli(str(tmp_path / "missing"), "--max-text-chars", "5000000")
    assert result.returncode == 2 and "could never arrive" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(str(tmp_path / "missing"), "--max-generate-chars", "200000")
    assert result.returncode == 2 and "most rnnkit generates" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(str(tmp_path / "missing"), "--host", "0.0.0.0")
    assert "warning: binding to 0.0.0.0 listens on every network interface" in result.stderr
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_cli_reports_a_busy_port(server, demo_bundle):
    result = subprocess.run([sys.executable, "-m", "rnnkit.cli", "serve", str(demo_bundle[0]), "--engine", ENGINE,
                             "--port", str(server.port)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr


def _children(pid: int) -> set[int]:
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def wait_for_log(srv: Server, text: str, timeout: float = 120) -> None:
    """Wait until the server's stderr holds `text` (a condition; the timeout only bounds a hang)."""
    deadline = time.monotonic() + timeout
    while text not in "".join(srv.log):
        assert time.monotonic() < deadline and srv.proc.poll() is None, f"no {text!r} in: {''.join(srv.log)}"
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="--workers above 1 needs Linux")
def test_workers_share_the_port_a_dead_worker_is_replaced_and_ctrl_c_stops_all(demo_bundle, model):
    srv = start_server(str(demo_bundle[0]), "--engine", ENGINE, "--workers", "2")
    try:
        wait_for_log(srv, "2 workers ready")  # both serve: a worker killed now is a crash, not a failed start
        workers = _children(srv.proc.pid)
        assert len(workers) == 2 and "2 worker processes" in "".join(srv.log)
        texts = ["a wonderful film", "the worst and most boring mess", "great cast", "boring"]
        expected = [p["probability_positive"] for p in model.predict(texts)]
        for round_ in range(3):  # fresh connections: the kernel spreads them over both workers
            for text, want in zip(texts, expected):
                assert predict(srv, text)["probability_positive"] == pytest.approx(want, abs=1e-5)
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)  # a crashed worker: the parent starts another on its socket
        wait_for_log(srv, f"(replacing worker {victim})")
        replaced = _children(srv.proc.pid)
        assert len(replaced) == 2 and victim not in replaced, "".join(srv.log)
        for _ in range(8):
            assert predict(srv, texts[0])["probability_positive"] == pytest.approx(expected[0], abs=1e-5)
        assert "starting another" in "".join(srv.log)
    finally:
        children = _children(srv.proc.pid) if srv.proc.poll() is None else set()
        stop(srv)
    assert all(not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
               for pid in children), "a worker outlived the server"


def test_cli_refuses_zero_workers_and_more_than_the_machine_can_use(tmp_path):
    result = run_cli(str(tmp_path / "missing"), "--workers", "0")
    assert result.returncode == 2 and "--workers must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr
    if sys.platform.startswith("linux"):
        result = run_cli(str(tmp_path / "missing"), "--workers", "1000")
        assert result.returncode == 2 and "four per core" in result.stderr and "Traceback" not in result.stderr


# --------------------------------------------------------------------------- a real browser

BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (drives Debian's chromium)")
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine: apt-get install -y chromium (.ci/run does)")
    with playwright.sync_playwright() as p:
        profile = tmp_path / "profile"  # an empty --user-data-dir
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=BROWSER_FLAGS)
        context.set_default_timeout(HANG * 1000)  # every wait is for something on the page; this bounds a hang
        try:
            yield context.new_page()
        finally:
            context.close()


def test_browser_types_a_review_and_reads_the_prediction(server, page, tmp_path):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{server.url}/")
    page.wait_for_function("document.getElementById('model').textContent.includes('engine')")
    page.fill("#review", REVIEW)
    page.click("#judge")
    page.wait_for_selector("#result:not([hidden])")
    shown_label = page.text_content("#label")
    shown_percent = float(page.text_content("#probability").rstrip("%"))
    words = page.locator("#words li .word").all_text_contents()

    api = httpx.post(f"{server.url}/v1/explain", json={"text": REVIEW, "top_k": 8}, timeout=HANG).json()
    assert shown_label == api["prediction"]["label"]
    assert shown_percent == pytest.approx(100 * api["prediction"]["probability"], abs=0.051)
    assert len(words) == len(api["words"]) > 0
    assert words[0].split(" ×")[0] == api["words"][0]["word"]
    fill = page.eval_on_selector("#bar-fill", "e => parseFloat(e.style.width)")
    assert fill == pytest.approx(100 * api["prediction"]["probability_positive"], abs=0.051)

    shot = tmp_path / "serve_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("RNNKIT_SCREENSHOT"):
        shutil.copy(shot, os.environ["RNNKIT_SCREENSHOT"])
    assert requested and all(url.startswith(server.url) for url in requested), requested  # nothing from outside


def test_browser_shows_the_servers_error_for_text_without_words(server, page):
    page.goto(f"{server.url}/")
    page.fill("#review", "... ;; ...")
    page.click("#judge")
    page.wait_for_selector("#error:not([hidden])")
    assert "no words" in page.text_content("#error")
    assert page.is_hidden("#result")


@pytest.fixture(scope="module")
def lm_server(tmp_path_factory):
    """A server for a tiny character LM (trained in about a second on the numpy engine)."""
    from rnnkit.config import ModelConfig, TrainConfig
    from rnnkit.tasks import charlm

    out = tmp_path_factory.mktemp("charlm") / "tiny"
    text = "".join(f"the cat sat on the mat {i % 7}.\n" for i in range(300))
    config = ModelConfig(vocab_size=1, cell="lstm", hidden_size=32, embedding_dim=16, dropout=0.0)
    train = TrainConfig(epochs=3, batch_size=8, learning_rate=1e-2, seed=0, threads=1, checkpoint_every=0)
    charlm.train(text, config, train, charlm.CharLMSettings(seq_len=32), out, progress=False, engine="numpy")
    srv = start_server(str(out), "--engine", ENGINE, "--max-generate-chars", "500")
    yield srv
    stop(srv)


def test_browser_generates_text_with_a_character_lm(lm_server, page, tmp_path):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{lm_server.url}/")
    page.wait_for_function("() => document.getElementById('model').textContent.includes('engine')")
    assert page.is_visible("#prime") and page.is_hidden("#review") and page.text_content("#task") == "text generation"
    assert page.get_attribute("#length", "max") == "500"
    page.fill("#prime", "the ")
    page.fill("#length", "150")
    page.fill("#temperature", "0.7")
    page.fill("#seed", "3")
    page.click("#generate")
    page.wait_for_function("() => document.getElementById('generation-notes').textContent.includes('seed 3')")
    api = httpx.post(f"{lm_server.url}/v1/generate", json={"prime": "the ", "length": 150, "temperature": 0.7,
                                                             "seed": 3}, timeout=HANG).json()
    assert page.text_content("#continuation") == api["text"] and len(api["text"]) == 150
    assert page.text_content("#prime-shown") == "the "
    assert page.text_content("#generation-notes").startswith("150 characters · seed 3 · temperature 0.7")

    sent = len(requested)
    page.fill("#length", "501")  # over the server's limit of 500: the browser refuses it before sending
    page.click("#generate")
    assert page.eval_on_selector("#length", "e => e.validity.rangeOverflow") and len(requested) == sent
    page.fill("#length", "150")
    page.fill("#prime", "the " * 1001)  # over the server's prime limit (4000): the server's message is shown
    page.click("#generate")
    page.wait_for_selector("#error:not([hidden])")
    assert "limit of 4000" in page.text_content("#error") and page.is_hidden("#generation")

    shot = tmp_path / "serve_page_charlm.png"
    page.fill("#prime", "the ")
    page.click("#generate")  # the error's hidden #generation still holds the notes of the first run: wait for it shown
    page.wait_for_function("() => !document.getElementById('generation').hidden"
                           " && document.getElementById('generation-notes').textContent.includes('seed 3')")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("RNNKIT_SCREENSHOT"):  # next to the sentiment one: NAME_charlm.png
        target = os.environ["RNNKIT_SCREENSHOT"]
        stem, dot, suffix = target.rpartition(".")
        shutil.copy(shot, f"{stem}_charlm.{suffix}" if dot else f"{target}_charlm")
    assert requested and all(url.startswith(lm_server.url) for url in requested), requested  # nothing from outside


TOPICS = {"billing": "invoice charge refund payment card price", "login": "password login account locked reset email",
          "crash": "crash freeze error bug slow screen"}
FILLER = "the app my please when i it and is was this after today again help".split()
TICKET = "My password reset email never came and my account is locked, please help!"


@pytest.fixture(scope="module")
def classify_server(tmp_path_factory):
    """A server for a tiny 3-class classify bundle (generated support tickets; trained in about a second)."""
    import csv

    import rnnkit

    root = tmp_path_factory.mktemp("classify")
    rng = random.Random(0)
    with open(root / "tickets.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("text", "label"))
        for _ in range(300):
            label = rng.choice(sorted(TOPICS))
            words = [rng.choice(TOPICS[label].split()) for _ in range(3)] + rng.sample(FILLER, 6)
            rng.shuffle(words)
            writer.writerow((" ".join(words), label))
    rnnkit.train("classify", data=root / "tickets.csv", out=root / "run", epochs=3, hidden=16, embedding_dim=16,
                 batch_size=32, lr=0.01, quiet=True, engine="numpy")
    srv = start_server(str(root / "run"), "--engine", ENGINE)
    yield srv
    stop(srv)


def _open_classify_page(page, url: str) -> None:
    page.goto(f"{url}/")
    page.wait_for_function("() => document.getElementById('model').textContent.includes('engine')")
    assert page.text_content("#task") == "text classification"
    assert page.is_visible("#text") and page.is_hidden("#review") and page.is_hidden("#prime")


def test_browser_classifies_a_text_and_explains_it(classify_server, page, tmp_path):
    server = classify_server
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    _open_classify_page(page, server.url)
    info = httpx.get(f"{server.url}/v1/model", timeout=HANG).json()
    assert info["labels"] == ["billing", "crash", "login"] and "cannot drive" not in page.text_content("#model")
    assert page.text_content("#model-labels") == "3 classes: billing, crash, login"
    assert f"val_accuracy {info['metrics']['val_accuracy']:.4g}" in page.text_content("#model-metrics")

    page.fill("#text", TICKET)
    page.press("#text", "Control+Enter")  # the keyboard submits, as the button does
    page.wait_for_selector("#classification:not([hidden])")
    api = httpx.post(f"{server.url}/v1/predict", json={"text": TICKET}, timeout=HANG).json()["prediction"]
    ranked = sorted(api["probabilities"].items(), key=lambda item: -item[1])
    assert page.text_content("#class-label") == api["label"]
    assert float(page.text_content("#class-score").rstrip("%")) == pytest.approx(100 * api["score"], abs=0.051)
    assert page.locator("#classes li .name").all_text_contents() == [label for label, _ in ranked]  # top first
    widths = page.eval_on_selector_all("#classes .fill", "bars => bars.map(b => parseFloat(b.style.width))")
    assert widths == pytest.approx([100 * p for _, p in ranked], abs=0.051)  # one bar per class
    assert page.locator("#classes li.chosen .name").all_text_contents() == [api["label"]]
    assert page.is_hidden("#explanation") and page.is_hidden("#classes-more")

    page.click("#explain")
    page.wait_for_selector("#explanation:not([hidden])")
    explained = httpx.post(f"{server.url}/v1/explain", json={"text": TICKET, "top_k": 8}, timeout=HANG).json()
    assert page.text_content("#explained") == f"“{explained['explained']}”"
    words = [w.split(" ×")[0] for w in page.locator("#class-words li .word").all_text_contents()]
    assert words == [w["word"] for w in explained["words"]] and len(words) == 8
    assert page.text_content("#highlighted") == TICKET  # the text as typed, its explained words marked
    marks = page.eval_on_selector_all("#highlighted mark",
                                      "marks => marks.map(m => [m.textContent.toLowerCase(), m.className])")
    effects = {w["word"]: w["effect"] for w in explained["words"]}
    assert {word for word, _ in marks} == set(effects)
    assert all(side == ("positive" if effects[word] >= 0 else "negative") for word, side in marks)

    shot = tmp_path / "serve_page_classify.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("RNNKIT_SCREENSHOT"):  # next to the sentiment one: NAME_classify.png
        target = os.environ["RNNKIT_SCREENSHOT"]
        stem, dot, suffix = target.rpartition(".")
        shutil.copy(shot, f"{stem}_classify.{suffix}" if dot else f"{target}_classify")

    page.fill("#text", "zzz qqq")  # no word the model knows: the server's 422 message, and no stale result
    page.click("#classify")
    page.wait_for_selector("#error:not([hidden])")
    refused = httpx.post(f"{server.url}/v1/predict", json={"text": "zzz qqq"}, timeout=HANG)
    assert refused.status_code == 422
    assert page.text_content("#error") == refused.json()["error"]["message"] and page.is_hidden("#classification")
    assert requested and all(url.startswith(server.url) for url in requested), requested  # nothing from outside


def test_browser_shows_many_tags_capped_and_every_kind_of_error(classify_server, page):
    """Answers the tiny bundle cannot give, put in the server's place: 15 tags of a multi-label model, then errors."""
    _open_classify_page(page, classify_server.url)
    tags = {f"tag{n:02d}": round(0.97 - 0.06 * n, 2) for n in range(15)}  # tag00 0.97 ... tag14 0.13
    replies = [
        {"status": 200, "json": {"prediction": {"label": "tag00", "score": 0.97, "probabilities": tags,
                                                "labels": ["tag00", "tag01", "tag02", "tag03", "tag04", "tag05",
                                                           "tag06", "tag07"],
                                                "tokens": 3, "unknown": 1, "truncated": False}}},
        {"status": 503, "json": {"error": {"status": 503, "message": "the model is busy; try again"}}},
        {"status": 413, "json": {"error": {"status": 413, "message": "the body is over the limit of 100 bytes"}}},
        {"status": 502, "body": "<html>bad gateway</html>", "content_type": "text/html"},  # not JSON: still a message
    ]
    page.route("**/v1/predict", lambda route: route.fulfill(**replies.pop(0)))

    page.fill("#text", "refund my card")
    page.click("#classify")
    page.wait_for_selector("#classification:not([hidden])")
    assert page.text_content("#class-label") == "tag00, tag01, tag02, tag03, tag04, tag05, tag06, tag07"
    names = page.locator("#classes li .name").all_text_contents()
    assert names == [f"tag{n:02d}" for n in range(10)]  # top 10, highest first
    assert len(page.locator("#classes li.chosen").all()) == 8
    assert page.text_content("#classes-more") == "and 5 more tags, each at 37.0% or less"
    assert "1 not in the vocabulary" in page.text_content("#class-notes")

    for expected in ("the model is busy; try again", "the body is over the limit of 100 bytes", "error 502"):
        page.click("#classify")
        page.wait_for_function("text => document.getElementById('error').textContent === text"
                               " && !document.getElementById('error').hidden"
                               " && !document.getElementById('classify').disabled", arg=expected)
        assert page.is_hidden("#classification") and page.is_enabled("#explain")

"""Serving benchmark: `rnnkit serve` under load from a separate load-generator process (wrk), loopback only.

    python bench/serve.py --bundle runs/imdb                  # a trained bundle (~3 min)
    python bench/serve.py                                     # default IMDB architecture, random weights

Measures, against one `rnnkit serve BUNDLE` process on 127.0.0.1:
1. start to first answer: from launching `rnnkit serve` to the first 200 from
   POST /v1/predict (median of --start-runs fresh processes);
2. single-review requests ({"text": ...}) from --clients concurrent
   connections for --duration s: requests/s, p50/p99 latency, errors (whole
   reviews: --repeats runs, the median one reported); and once with short
   ones (their first 12 words), which separates the HTTP cost from the model's;
3. batched requests ({"texts": [--batch reviews]}), same clients: texts/s;
4. the model alone, in this process: one review, and a batch of --clients
   reviews, through the predictor's probabilities (the serving engine's cost);
5. the reference: the same bundle behind bench/reference_server.py (FastAPI +
   torch written the usual way: one `def` endpoint running the model per
   request) under `uvicorn --workers` (the same count), with one torch thread
   per worker, with torch's default, and with one thread under bfloat16
   autocast; its best setting is the headline `rps_single_reference_server`.
   Both servers must give the same probabilities (to 1e-4; 5e-2 in bf16) for
   20 reviews, or the bench stops.
Requests carry real IMDB test reviews (whole, as people send them) when the
data set is found (--data, $RNNKIT_IMDB or ../shared/data), else generated
reviews. Without --bundle, a bundle of the default IMDB model (bi-GRU 128,
embedding 128, mean_max pooling, a 30,000-word vocabulary from imdb.vocab) with
random weights is written to a temporary directory: the cost of serving does
not depend on the weights' values.

Needs `wrk` (apt-get install wrk). Writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "serve.json"
sys.path.insert(0, str(ROOT / "bench"))
from common import machine  # noqa: E402
SHARED_IMDB = ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz"
PROBE = json.dumps({"text": "This movie is really bad. I do not like it."}).encode()


# --------------------------------------------------------------------------- inputs


def imdb_texts(data: Path | None, count: int) -> tuple[list[str], list[str]] | None:
    """(the first `count` IMDB test reviews, imdb.vocab words) from the tarball, or None when absent."""
    for candidate in (data, os.environ.get("RNNKIT_IMDB"), SHARED_IMDB):
        if candidate and Path(candidate).is_file():
            break
    else:
        return None
    reviews, words = [], []
    with tarfile.open(candidate, "r:gz") as tar:  # imdb.vocab and test/ come first in the archive
        for member in tar:
            if member.name.endswith("imdb.vocab"):
                words = tar.extractfile(member).read().decode("utf-8").split()
            elif member.name.startswith("aclImdb/test/") and member.name.endswith(".txt"):
                reviews.append(tar.extractfile(member).read().decode("utf-8"))
                if len(reviews) == count:
                    break
    return reviews, words


def generated_texts(count: int) -> tuple[list[str], list[str]]:
    from rnnkit.data.synthetic import generate_reviews
    from rnnkit.data.vocab import count_tokens, tokenize

    texts, _ = generate_reviews(count, seed=0)
    return texts, sorted(count_tokens(tokenize(t) for t in texts))


def random_default_bundle(out: Path, words: list[str]) -> Path:
    """The default `rnnkit train imdb` model with random weights and a 30,000-word vocabulary."""
    from rnnkit.bundle import save_bundle
    from rnnkit.config import ModelConfig
    from rnnkit.data.vocab import Vocab
    from rnnkit.params import parameter_shapes
    from rnnkit.tasks.classify import ClassifySettings

    vocab = Vocab.build({w: len(words) - i for i, w in enumerate(dict.fromkeys(words))}, max_size=30000)
    config = ModelConfig(vocab_size=len(vocab), cell="gru", embedding_dim=128, hidden_size=128,
                         bidirectional=True, dropout=0.3, pooling="mean_max")
    rng = np.random.default_rng(0)
    tensors = {name: rng.uniform(-0.088, 0.088, shape).astype(np.float32)  # U(-1/sqrt(H), 1/sqrt(H))
               for name, shape in parameter_shapes(config).items()}
    settings = ClassifySettings(labels=("negative", "positive"), maxlen=500, dataset="imdb").to_json()
    return save_bundle(out, "classify", config, vocab.to_json(), tensors, settings=settings)


# --------------------------------------------------------------------------- the server


def serve_command(bundle: Path, port: int, engine: str, workers: int = 1, extra: Sequence[str] = ()) -> list[str]:
    exe = shutil.which("rnnkit")
    base = [exe] if exe else [sys.executable, "-m", "rnnkit.cli"]
    return [*base, "serve", str(bundle), "--port", str(port), "--engine", engine, "--workers", str(workers), *extra]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_once(port: int, body: bytes, timeout: float = 5.0) -> int:
    """One HTTP/1.1 POST /v1/predict on a fresh connection; the status code (0 if refused)."""
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(head + body)
            reply = sock.recv(64)
    except OSError:
        return 0
    return int(reply.split()[1]) if reply.startswith(b"HTTP/") else 0


def start_to_first_answer(bundle: Path, engine: str, workers: int) -> float:
    """Seconds from launching `rnnkit serve` to its first 200 answer to POST /v1/predict."""
    started = time.perf_counter()
    server = start_server(serve_command(bundle, free_port(), engine, workers))
    seconds = time.perf_counter() - started
    stop_server(server)
    return seconds


def reference_command(port: int, workers: int) -> list[str]:
    """uvicorn serving bench/reference_server.py (FastAPI + torch, the usual way) with `workers` processes."""
    return [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "reference_server:app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]


def start_server(command: list[str], env: dict | None = None, limit: float = 60.0) -> subprocess.Popen:
    """Launch a server on the port in `command` and wait (at most `limit` s) for its first 200 to PROBE."""
    port = int(command[command.index("--port") + 1])
    started = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, **(env or {})})
    while post_once(port, PROBE) != 200:
        if server.poll() is not None:
            raise SystemExit(f"{' '.join(command[:4])} exited: {server.stderr.read().decode()}")
        if time.perf_counter() - started > limit:
            stop_server(server)
            raise SystemExit(f"{' '.join(command[:4])} did not answer within {limit:g} s")
        time.sleep(0.005)
    return server


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def post_json(port: int, body: dict) -> dict:
    """One POST /v1/predict; the decoded JSON answer."""
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def agreement(port_a: int, port_b: int, texts: list[str]) -> float:
    """Largest difference between two servers' class probabilities over `texts` (the same model?)."""
    worst = 0.0
    for text in texts:
        a, b = (post_json(port, {"text": text})["prediction"]["probabilities"] for port in (port_a, port_b))
        worst = max(worst, *(abs(a[k] - b[k]) for k in a))
    return worst


# --------------------------------------------------------------------------- load (wrk)

WRK_SCRIPT = """
local bodies = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/predict", {["Content-Type"] = "application/json"}, bodies[(n %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d, '
    .. '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def lua_string(text: str) -> str:
    level = "=" * 3
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def run_wrk(port: int, bodies: list[dict], clients: int, duration: float, workdir: Path) -> dict:
    """Drive POST /v1/predict with wrk (one thread, `clients` connections); counts and latency."""
    script = workdir / "bodies.lua"
    script.write_text(WRK_SCRIPT % ", ".join(lua_string(json.dumps(b)) for b in bodies), encoding="utf-8")
    command = ["wrk", "-t1", f"-c{clients}", f"-d{duration:g}s", "--timeout", "10s", "-s", str(script),
               f"http://127.0.0.1:{port}/v1/predict"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    seconds = result["duration_us"] / 1e6
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {"requests": result["requests"], "rps": result["requests"] / seconds, "p50_ms": result["p50_us"] / 1e3,
            "p99_ms": result["p99_us"] / 1e3, "max_ms": result["max_us"] / 1e3, "errors": errors}


def median_run(port: int, bodies: list[dict], clients: int, duration: float, workdir: Path, repeats: int) -> dict:
    """`repeats` wrk runs back to back: the figures of the one with the median requests/s, every run's rps
    and p99 (the machine is shared and one 10 s run moves by 5-10%), and the requests and errors of all."""
    runs = sorted((run_wrk(port, bodies, clients, duration, workdir) for _ in range(repeats)), key=lambda r: r["rps"])
    return {**runs[len(runs) // 2], "runs_rps": [round(r["rps"], 1) for r in runs],
            "runs_p99_ms": [round(r["p99_ms"], 2) for r in runs],
            "requests": sum(r["requests"] for r in runs), "errors": sum(r["errors"] for r in runs)}


REFERENCE_SETTINGS = {  # name: (torch threads per worker or None for torch's default, precision)
    "1": ("1", "fp32"), "default": (None, "fp32"), "1, bf16": ("1", "bf16")}
AGREEMENT = {"fp32": 1e-4, "bf16": 5e-2}  # the largest probability difference from rnnkit serve's (float32)


def reference_run(bundle: Path, port: int, texts: list[str], singles: list[dict], args, workdir: Path,
                  setting: str) -> dict:
    """The reference server on the same bundle and load, with REFERENCE_SETTINGS[setting]: wrk's
    single-review figures, and the largest difference from `rnnkit serve` (still listening on `port`) in
    20 reviews' probabilities."""
    threads, precision = REFERENCE_SETTINGS[setting]
    reference_port = free_port()
    env = {"RNNKIT_REFERENCE_BUNDLE": str(bundle.resolve()), "RNNKIT_REFERENCE_PRECISION": precision}
    if threads is not None:
        env["RNNKIT_REFERENCE_THREADS"] = threads
    server = start_server(reference_command(reference_port, args.workers), env)
    try:
        differs = agreement(port, reference_port, texts[:20])
        run_wrk(reference_port, singles, args.clients, 2, workdir)  # warm-up
        result = median_run(reference_port, singles, args.clients, args.duration, workdir, args.repeats)
    finally:
        stop_server(server)
    print(f"reference server (torch threads {setting}): {result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
          f"p99 {result['p99_ms']:.1f} ms, {result['errors']} errors; probabilities within {differs:.1e} of "
          "rnnkit serve", flush=True)
    if differs > AGREEMENT[precision]:
        raise SystemExit(f"the reference server answers differ from rnnkit serve by {differs:.2e}: not the same model")
    return {**result, "max_probability_difference": differs}


def model_only(bundle: Path, engine: str, texts: list[str], clients: int) -> dict:
    """The engine's own cost (ms), without HTTP: one review at a time, and `clients` reviews in one call."""
    from threadpoolctl import threadpool_limits

    from rnnkit.tasks import load_predictor

    threadpool_limits(1)  # as `rnnkit serve` runs it (--threads 1)
    model = load_predictor(bundle, engine=engine)
    encoded = [model.encode(t)[0] for t in texts]
    one = _median_ms(lambda i: model.probabilities([encoded[i % len(encoded)]]), 30)
    batch = _median_ms(lambda i: model.probabilities(encoded[(i * clients) % len(encoded):][:clients]), 10)
    return {"single_review_ms": round(one, 2), f"batch_of_{clients}_ms": round(batch, 2),
            "reviews_per_second_single": round(1000 / one, 1), "reviews_per_second_batched": round(1000 * clients / batch, 1),
            "mean_tokens": round(float(np.mean([len(e) for e in encoded])), 1)}


def _median_ms(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", help="bundle to serve, as `rnnkit train imdb` writes it (default: the IMDB "
                                         "architecture, random weights)")
    parser.add_argument("--data", help="IMDB tarball for request texts (default: $RNNKIT_IMDB, ../shared/data)")
    parser.add_argument("--engine", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--workers", type=int, default=2, help="rnnkit serve --workers (default %(default)s: the cores)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections (default %(default)s)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of each load run (default %(default)s)")
    parser.add_argument("--batch", type=int, default=32, help="reviews per batched request (default %(default)s)")
    parser.add_argument("--reviews", type=int, default=512, help="distinct reviews to cycle through (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="single-review load runs per server; the median one is reported (default %(default)s)")
    parser.add_argument("--start-runs", type=int, default=3, help="fresh processes timed to first answer (default %(default)s)")
    parser.add_argument("--out", default=str(RESULTS), help="results JSON (default %(default)s)")
    parser.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for the measured `rnnkit serve` (repeatable), e.g. "
                             "--serve-arg=--batch-wait-ms=0")
    parser.add_argument("--no-reference", action="store_true",
                        help="leave out the reference FastAPI + torch server (bench/reference_server.py)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench/serve.py needs wrk as its load generator: apt-get install -y wrk")

    found = imdb_texts(Path(args.data) if args.data else None, args.reviews)
    texts, words = found if found else generated_texts(args.reviews)
    workdir = Path(tempfile.mkdtemp(prefix="rnnkit-bench-serve-"))
    bundle = Path(args.bundle) if args.bundle else random_default_bundle(workdir / "imdb-random", words)

    starts = [start_to_first_answer(bundle, args.engine, args.workers) for _ in range(args.start_runs)]
    print(f"start to first answer: {', '.join(f'{s:.2f}' for s in starts)} s", flush=True)

    port = free_port()
    server = start_server(serve_command(bundle, port, args.engine, args.workers, args.serve_arg))
    try:
        singles = [{"text": t} for t in texts]
        shorts = [{"text": " ".join(t.split()[:12])} for t in texts]
        batches = [{"texts": (texts * 2)[i:i + args.batch]} for i in range(0, len(texts), args.batch)]
        run_wrk(port, singles, args.clients, 2, workdir)  # warm-up
        single = median_run(port, singles, args.clients, args.duration, workdir, args.repeats)
        print(f"single: {single['rps']:.0f} req/s, p50 {single['p50_ms']:.1f} ms, p99 {single['p99_ms']:.1f} ms, "
              f"{single['errors']} errors (the median of {single['runs_rps']} req/s)", flush=True)
        short = run_wrk(port, shorts, args.clients, args.duration, workdir)
        print(f"single, 12 words: {short['rps']:.0f} req/s, p50 {short['p50_ms']:.1f} ms, p99 {short['p99_ms']:.1f} ms, "
              f"{short['errors']} errors", flush=True)
        batched = run_wrk(port, batches, args.clients, args.duration, workdir)
        print(f"batched ({args.batch}/request): {batched['rps'] * args.batch:.0f} texts/s, "
              f"p99 {batched['p99_ms']:.1f} ms/request, {batched['errors']} errors", flush=True)
        references = {} if args.no_reference else {
            setting: reference_run(bundle, port, texts, singles, args, workdir, setting)
            for setting in REFERENCE_SETTINGS}
    finally:
        stop_server(server)
    engine_cost = model_only(bundle, args.engine, texts, args.clients)
    print(f"model alone ({args.engine}): {engine_cost}", flush=True)

    best = max(references.values(), key=lambda r: r["rps"]) if references else None
    result = {
        "rps_single": round(single["rps"], 1), "p99_ms_single": round(single["p99_ms"], 2),
        "rps_single_runs": single["runs_rps"], "p99_ms_single_runs": single["runs_p99_ms"],
        "rps_single_reference_server": best and round(best["rps"], 1),
        "p99_ms_single_reference_server": best and round(best["p99_ms"], 2),
        "reference_server": references and {
            "what": "bench/reference_server.py: FastAPI + torch, one def endpoint running the model per request, "
                    f"uvicorn --workers {args.workers}; torch threads per worker (and bf16 autocast); its best "
                    "setting is the headline",
            "by_setting": {k: {m: (round(v, 2) if isinstance(v, float) else v) for m, v in r.items()}
                                         for k, r in references.items()}},
        "speedup_vs_reference_server": best and round(single["rps"] / best["rps"], 2),
        "p50_ms_single": round(single["p50_ms"], 2), "rps_batched_texts": round(batched["rps"] * args.batch, 1),
        "p99_ms_batched_request": round(batched["p99_ms"], 2), "batch_size": args.batch,
        "rps_single_12_words": round(short["rps"], 1), "p99_ms_single_12_words": round(short["p99_ms"], 2),
        "errors": single["errors"] + short["errors"] + batched["errors"],
        "requests": single["requests"] + short["requests"] + batched["requests"],
        "start_to_first_answer_seconds": round(statistics.median(starts), 3),
        "start_to_first_answer_runs": [round(s, 3) for s in starts],
        "serve_args": args.serve_arg, "model_only": engine_cost, "clients": args.clients, "workers": args.workers, "duration_s": args.duration, "engine": args.engine,
        "bundle": str(args.bundle) if args.bundle else "default IMDB architecture, random weights",
        "texts": "IMDB test reviews" if found else "generated reviews", "load_generator": "wrk -t1",
        "targets": {"rps_single": 1000, "p99_ms_single": 50, "errors": 0, "start_to_first_answer_seconds": 1.0},
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
        "load_average_at_end": os.getloadavg()[0],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`rnnkit serve BUNDLE`: the HTTP API and the page on uvicorn.

The parser part imports nothing heavy, and the numpy engine (the default) never
imports torch.
"""

from __future__ import annotations

import signal
import socket
import sys

from rnnkit.errors import InputError, RnnkitError
from rnnkit.serve.limits import LOOPBACK_DEFAULT, ServeLimits, check_host


def register(commands) -> None:
    d = ServeLimits()
    serve = commands.add_parser(
        "serve", help="serve a bundle over HTTP: JSON API + a web page",
        description="Serve a trained bundle: POST /v1/predict, /v1/explain (sentiment), /v1/generate (charlm), "
                    "/v1/translate (seq2seq), GET /healthz, /v1/model, /openapi.json, and a page at /. "
                    "Binds to 127.0.0.1 unless --host says otherwise.")
    serve.add_argument("bundle", help="bundle directory written by rnnkit train")
    serve.add_argument("--host", default=LOOPBACK_DEFAULT, help="address to bind (default %(default)s: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one (default %(default)s)")
    serve.add_argument("--engine", choices=("numpy", "torch"), default="numpy", help="numpy needs no torch (default)")
    serve.add_argument("--threads", type=int, default=1,
                       help="BLAS (numpy) and torch threads (default %(default)s: requests are already batched, and "
                            "more threads fight the server's own for the cores; measured 1.5-15x slower with 2 on 2 cores)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes sharing the port, each with its own model thread (default %(default)s; "
                            "one process keeps about one core busy, so use the number of cores for throughput; "
                            "Linux only)")
    limits = serve.add_argument_group("limits")
    limits.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes, help="largest request body (default %(default)s)")
    limits.add_argument("--max-texts", type=int, default=d.max_texts, help="most texts per request (default %(default)s)")
    limits.add_argument("--max-text-chars", type=int, default=d.max_text_chars,
                        help="longer texts are truncated to this many characters (default %(default)s)")
    limits.add_argument("--explain-max-words", type=int, default=d.explain_max_words,
                        help="distinct words /v1/explain leaves out, at most (default %(default)s)")
    limits.add_argument("--timeout", type=float, default=d.timeout_seconds,
                        help="seconds to receive a body and to answer it (default %(default)s)")
    limits.add_argument("--batch-texts", type=int, default=d.batch_texts,
                        help="most texts the model runs in one call (default %(default)s)")
    limits.add_argument("--batch-wait-ms", type=float, default=d.batch_wait_ms,
                        help="under load, how long a batch may wait for as many requests as the last one held "
                             "(default %(default)s; 0: never; an idle server never waits)")
    limits.add_argument("--max-queued-texts", type=int, default=d.max_queued_texts,
                        help="texts waiting for the model before requests get 503 (default %(default)s)")
    limits.add_argument("--max-connections", type=int, default=d.max_connections,
                        help="open connections before new ones get 503 (default %(default)s)")
    limits.add_argument("--max-generate-chars", type=int, default=d.max_generate_chars,
                        help="most characters one /v1/generate request may ask for (default %(default)s)")
    limits.add_argument("--max-generate-words", type=int, default=d.max_generate_words,
                        help="most words one /v1/generate request may ask for of a word LM (default %(default)s)")
    limits.add_argument("--max-prime-chars", type=int, default=d.max_prime_chars,
                        help="longest prime /v1/generate reads (default %(default)s)")
    limits.add_argument("--max-head-bytes", type=int, default=d.max_head_bytes,
                        help="largest request line + headers; larger ones get 431 (default %(default)s)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=cmd_serve)


def limits_from(args) -> ServeLimits:
    return ServeLimits(max_body_bytes=args.max_body_bytes, max_texts=args.max_texts,
                       max_text_chars=args.max_text_chars, explain_max_words=args.explain_max_words,
                       timeout_seconds=args.timeout, max_queued_texts=args.max_queued_texts,
                       batch_texts=args.batch_texts, batch_wait_ms=args.batch_wait_ms,
                       max_connections=args.max_connections,
                       max_generate_chars=args.max_generate_chars, max_generate_words=args.max_generate_words,
                       max_prime_chars=args.max_prime_chars,
                       max_head_bytes=args.max_head_bytes)


def cmd_serve(args) -> int:
    limits = limits_from(args)  # inconsistent limits stop here, before anything loads
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be 0..65535; got {args.port}")
    if args.workers < 1:
        raise InputError(f"--workers must be at least 1; got {args.workers}")
    if args.workers > 1:
        from rnnkit.serve.workers import can_fork_workers, max_workers

        why_not = can_fork_workers()
        if why_not:
            raise InputError(f"{why_not}; use --workers 1")
        if args.workers > max_workers():
            raise InputError(f"--workers {args.workers} is more than this machine can use (at most {max_workers()}: "
                             "four per core); one worker per core is the usual choice")
    resolve(args.host, args.port)  # a host that cannot be bound is one line now, before the warning and the load
    warning = check_host(args.host)
    if warning:
        print(f"rnnkit serve: warning: {warning}", file=sys.stderr)
    try:
        import uvicorn  # noqa: F401 - checked here, before the bundle loads

        from rnnkit.serve.app import create_app  # noqa: F401
    except ImportError as exc:
        raise RnnkitError(f"rnnkit serve needs FastAPI and uvicorn ({exc.name} is missing): "
                          "pip install 'rnnkit[serve]'") from None
    from rnnkit.tasks import load_predictor

    limit_threads(args.engine, args.threads)
    predictor = load_predictor(args.bundle, engine=args.engine)
    if predictor.task == "condlm":  # /v1/generate has no label to ask for
        raise InputError(f"{args.bundle} holds a conditional language model (condlm), which rnnkit serve does not "
                         f"serve yet; use rnnkit generate {args.bundle} --label {predictor.labels[-1]}")
    sock = bind(args.host, args.port, reuse_port=args.workers > 1)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    processes = f", {args.workers} worker processes" if args.workers > 1 else ""
    print(f"rnnkit serve: {predictor.bundle.task} model {args.bundle} ({args.engine} engine{processes}) at "
          f"http://{shown}:{port}/ - API /v1/..., schema /openapi.json; Ctrl-C stops", file=sys.stderr, flush=True)

    def serve(listening: socket.socket, ready=None) -> None:
        run_server(predictor, limits, args, listening, on_ready=ready)

    if args.workers > 1:
        from rnnkit.serve.workers import reuseport_sockets, run_workers

        status = run_workers(reuseport_sockets(sock, args.workers), serve)
    else:
        status = 0
        signal.signal(signal.SIGTERM, _interrupt)  # uvicorn shuts down gracefully, then re-raises the signal
        try:
            serve(sock)
        except KeyboardInterrupt:
            pass
    print("rnnkit serve: stopped", file=sys.stderr)
    return status


def run_server(predictor, limits: ServeLimits, args, sock: socket.socket, on_ready=None) -> None:
    """One uvicorn server for `predictor` on the listening `sock`, until it is stopped (KeyboardInterrupt).

    The app (its event loop, batcher and model thread) is made here, in the process that serves:
    with --workers each forked worker builds its own from the bundle loaded once before the fork.
    `on_ready()` is called once the server accepts connections (the supervisor waits for it).
    """
    import uvicorn

    from rnnkit.serve.app import create_app
    from rnnkit.serve.protocol import uvicorn_protocol, with_head_timeout

    app = create_app(predictor, limits, engine=args.engine)
    config = uvicorn.Config(app, http=with_head_timeout(uvicorn_protocol(), limits.timeout_seconds, limits.max_head_bytes),
                            log_level="info" if args.access_log else "warning", access_log=args.access_log,
                            limit_concurrency=limits.max_connections, timeout_keep_alive=5,
                            h11_max_incomplete_event_size=limits.max_head_bytes,  # (without httptools)
                            timeout_graceful_shutdown=5, server_header=False)
    if on_ready is None:
        uvicorn.Server(config).run(sockets=[sock])
        return

    class ReportingServer(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if not self.should_exit:
                on_ready()  # serving from here on

    ReportingServer(config).run(sockets=[sock])


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def limit_threads(engine: str, threads: int) -> None:
    """Cap the math libraries' threads: the model thread already gets batches, and idle-spinning
    BLAS/OpenMP workers would take the cores from the event loop and from each other."""
    if threads < 1:
        raise InputError(f"--threads must be at least 1; got {threads}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("rnnkit serve: warning: threadpoolctl is missing (pip install 'rnnkit[serve]'); "
              "numpy's BLAS keeps its default thread count", file=sys.stderr)
    else:
        threadpool_limits(threads)  # process-wide: OpenBLAS/MKL read it in every thread
    if engine == "torch":
        from rnnkit.optional import import_torch

        import_torch().set_num_threads(threads)


def resolve(host: str, port: int) -> tuple:
    """(family, type, proto, address) to bind host:port; InputError for a host that is no address or name.

    Not only gaierror: a name with an empty label ("not..a..host") fails in the IDNA codec (UnicodeError),
    and one with a NUL byte in the socket module (ValueError).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError, ValueError):
        raise InputError(f"--host {host!r} is not an address or a name this machine can resolve") from None
    return family, kind, proto, address


def bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A listening socket on host:port (connections queue from here on, before the loop starts).

    `reuse_port` sets SO_REUSEPORT before binding, so the workers' sockets can share the port (`workers`).
    """
    family, kind, proto, address = resolve(host, port)
    try:
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port, "
                         "or stop the program using it") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock

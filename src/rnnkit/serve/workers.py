"""`rnnkit serve --workers N`: N server processes on one port, so the model can use every core.

The numpy engine runs a model call on one BLAS thread, in one model thread per
process, so one server process keeps about one core busy. With N workers the
process that loaded the bundle forks N servers (no second load: start-up stays
that of one server, and the weights' pages are shared copy-on-write), each the
whole service: event loop, batcher, model thread.

Each worker listens on its own socket; the sockets share the port through
SO_REUSEPORT, so the kernel hands each new connection to one of them by a hash
of its addresses. One shared socket (as uvicorn's and gunicorn's workers use)
balances badly here: whichever event loop wakes first accepts every pending
connection, so a burst of keep-alive connections can all land on one worker.

The parent only supervises. SIGINT or SIGTERM to it stops the workers
gracefully (each finishes its requests) and then itself. A worker that dies
is replaced from the parent's loaded bundle, and its socket (kept open by the
parent) queues the connections the kernel sends there until the new worker
accepts them. A worker that dies within its first seconds stops the server:
that is a start-up failure, and replacing it would loop. Workers also stop if
the parent dies (a pipe they watch reaches end of file).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from typing import Callable

STARTUP_SECONDS = 5.0  # a worker that dies sooner is a start-up failure: stop instead of replacing it


def can_fork_workers() -> str | None:
    """None where --workers > 1 works, else why not (it needs fork and SO_REUSEPORT's balancing: Linux)."""
    if not sys.platform.startswith("linux"):
        return "--workers above 1 needs Linux (fork, and SO_REUSEPORT that spreads connections over the workers)"
    return None


def reuseport_sockets(first: socket.socket, count: int) -> list[socket.socket]:
    """`first` (bound, SO_REUSEPORT set before binding) and count - 1 more sockets on its address, all listening."""
    family, address = first.family, first.getsockname()
    sockets = [first]
    for _ in range(count - 1):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sockets.append(sock)
    for sock in sockets:
        sock.listen(2048)
    return sockets


def run_workers(sockets: list[socket.socket], serve: Callable[[socket.socket], None]) -> int:
    """Fork one worker per socket, each running `serve(sock)`; supervise them until SIGINT/SIGTERM.

    Returns the exit status for the parent: 0 after a requested stop, 1 when a worker failed at start-up.
    """
    watch_read, watch_write = os.pipe()  # workers watch its read end: end of file = the parent is gone
    workers: dict[int, tuple[int, float]] = {}  # pid -> (socket index, start time)

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(watch_write)
            os._exit(_worker(sockets[index], watch_read, serve))
        workers[pid] = (index, time.monotonic())

    previous = {sig: signal.signal(sig, _stop_request) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        for index in range(len(sockets)):
            start(index)
        while True:
            pid, code = os.waitpid(-1, 0)
            index, started = workers.pop(pid)
            if time.monotonic() - started < STARTUP_SECONDS:
                print(f"rnnkit serve: worker {pid} stopped at start-up ({_describe(code)}); stopping",
                      file=sys.stderr, flush=True)
                status = 1
                break
            print(f"rnnkit serve: worker {pid} stopped ({_describe(code)}); starting another",
                  file=sys.stderr, flush=True)
            start(index)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the graceful stop short
        _stop(workers)
        os.close(watch_write)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _worker(sock: socket.socket, watch_read: int, serve: Callable[[socket.socket], None]) -> int:
    """The body of a forked worker: its own process group (the terminal's Ctrl-C reaches only the parent,
    which passes it on once), a thread that stops it when the parent is gone, then the server."""
    try:
        os.setpgid(0, 0)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        threading.Thread(target=_stop_when_parent_exits, args=(watch_read,), daemon=True).start()
        serve(sock)
        return 0
    except KeyboardInterrupt:
        return 0
    except BaseException as exc:  # noqa: BLE001 - a worker must never return into the parent's code
        print(f"rnnkit serve: worker {os.getpid()} failed: {exc!r}", file=sys.stderr, flush=True)
        return 1
    finally:
        sys.stderr.flush()


def _stop_when_parent_exits(watch_read: int) -> None:
    while os.read(watch_read, 1):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def _stop(workers: dict[int, tuple[int, float]]) -> None:
    """SIGTERM every worker (a graceful stop), wait for them; SIGKILL any still running after 30 s."""
    for pid in workers:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while workers and time.monotonic() < deadline:
        for pid in list(workers):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                workers.pop(pid)
        time.sleep(0.02)
    for pid in workers:
        _signal(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _stop_request(signum, frame):
    raise KeyboardInterrupt


def _describe(code: int) -> str:
    if os.WIFSIGNALED(code):
        return f"signal {signal.Signals(os.WTERMSIG(code)).name}"
    return f"exit status {os.WEXITSTATUS(code)}"

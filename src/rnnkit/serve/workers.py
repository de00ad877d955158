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

The parent only supervises, and it decides on events, never on a clock:

- A worker is *ready* when it says so (it writes its pid to a pipe once its
  server accepts connections). Until then it is starting, however long a busy
  machine makes that take.
- A ready worker that dies is replaced at once on its socket (kept open by
  the parent, so the kernel's connections for it queue until the new worker
  accepts them).
- A worker that dies before it was ready failed at start-up. If no worker was
  ever ready, the server cannot come up (a broken bundle, a bad setting): it
  stops with status 1. Otherwise the healthy workers keep serving and the slot
  is retried with a growing delay; after `MAX_STARTUP_FAILURES` in a row its
  socket is closed (the kernel then sends its connections to the others).
- SIGINT or SIGTERM to the parent stops the workers gracefully (each finishes
  its requests) and then itself. Signals only set a flag and wake the loop
  (the self-pipe trick), and they are blocked while a worker is forked, so a
  Ctrl-C at any moment, start-up included, stops every worker.
- Workers also stop if the parent dies (a pipe they watch reaches end of file).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

MAX_STARTUP_FAILURES = 5  # a slot whose workers fail at start-up this many times in a row is given up
RETRY_BASE_SECONDS = 1.0  # delay before retrying a slot after its first start-up failure; doubles after each
RETRY_MAX_SECONDS = 30.0
STOP_GRACE_SECONDS = 30.0  # workers still running this long after SIGTERM are killed
_PID = struct.Struct("=i")  # what a ready worker writes: 4 bytes, below PIPE_BUF, so writes never interleave
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

ServeFunction = Callable[[socket.socket, Callable[[], None]], None]


def can_fork_workers() -> str | None:
    """None where --workers > 1 works, else why not (it needs fork and SO_REUSEPORT's balancing: Linux)."""
    if not sys.platform.startswith("linux"):
        return "--workers above 1 needs Linux (fork, and SO_REUSEPORT that spreads connections over the workers)"
    return None


def max_workers() -> int:
    """The most --workers accepted: four per core this process may use (each worker is a whole server
    with its own copy of what it writes; more processes than that only compete for the cores)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return 4 * max(1, cores)


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


def run_workers(sockets: list[socket.socket], serve: ServeFunction) -> int:
    """Fork one worker per socket, each running `serve(sock, ready)`; supervise them until SIGINT/SIGTERM.

    `serve` must call `ready()` once its server accepts connections, and return (or raise
    KeyboardInterrupt) when it is stopped. Returns the exit status for the parent: 0 after a
    requested stop, 1 when the server could not come up or every worker was lost.
    """
    return _Supervisor(sockets, serve).run()


@dataclass
class _Worker:
    slot: int  # index of its socket
    replacing: int | None  # pid of the worker it replaces, if any
    ready: bool = False


class _Supervisor:
    def __init__(self, sockets: list[socket.socket], serve: ServeFunction):
        self.sockets: list[socket.socket | None] = list(sockets)
        self.serve = serve
        self.workers: dict[int, _Worker] = {}
        self.failures = [0] * len(sockets)  # start-up failures in a row, per slot
        self.retry_at: dict[int, tuple[float, int]] = {}  # slot -> (monotonic time, pid it replaces)
        self.announced = False  # "N workers ready" printed
        self.stop_requested = False
        self.status = 0

    # ----------------------------------------------------------------- the loop

    def run(self) -> int:
        self.ready_read, self.ready_write = os.pipe()  # workers write their pid here once they serve
        self.watch_read, self.watch_write = os.pipe()  # workers watch it: end of file = the parent is gone
        self.wake_read, self.wake_write = os.pipe()  # signal handlers write here: the loop wakes at once
        os.set_blocking(self.wake_write, False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (*_STOP_SIGNALS, signal.SIGCHLD)}
        try:
            for slot in range(len(self.sockets)):
                self._start(slot, replacing=None)
            while not self.stop_requested:
                self._reap()
                if self.stop_requested:
                    break
                self._start_due_retries()
                if not self.workers and not self.retry_at:
                    _say("no worker is left; stopping")
                    self.status = 1
                    break
                self._wait()
        finally:
            for sig in _STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the graceful stop short
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (self.ready_read, self.ready_write, self.watch_write, self.wake_read, self.wake_write):
                os.close(fd)
            os.close(self.watch_read)
        return self.status

    def _on_signal(self, signum, frame) -> None:
        if signum in _STOP_SIGNALS:
            self.stop_requested = True
        try:
            os.write(self.wake_write, b"\0")
        except BlockingIOError:  # the pipe is full of wake-ups already
            pass

    def _wait(self) -> None:
        """Sleep until a worker reports ready, a signal arrives (a child exited, or a stop) or a retry is due."""
        timeout = None
        if self.retry_at:
            timeout = max(0.0, min(when for when, _ in self.retry_at.values()) - time.monotonic())
        readable, _, _ = select.select([self.ready_read, self.wake_read], [], [], timeout)
        if self.wake_read in readable:
            os.read(self.wake_read, 4096)
        if self.ready_read in readable:
            self._read_ready()

    def _read_ready(self) -> None:
        data = os.read(self.ready_read, _PID.size * 256)
        for (pid,) in _PID.iter_unpack(data[: len(data) - len(data) % _PID.size]):
            worker = self.workers.get(pid)
            if worker is None or worker.ready:
                continue
            worker.ready = True
            self.failures[worker.slot] = 0
            if worker.replacing is not None:
                _say(f"worker {pid} ready (replacing worker {worker.replacing})")
            elif not self.announced and all(w.ready for w in self.workers.values()):
                self.announced = True
                _say(f"{len(self.workers)} workers ready")

    # ----------------------------------------------------------------- workers

    def _start(self, slot: int, replacing: int | None) -> None:
        # Stop signals wait until the new pid is recorded (the parent) or the default handlers are back (the child).
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                os._exit(self._worker_body(slot))
            self.workers[pid] = _Worker(slot, replacing)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def _worker_body(self, slot: int) -> int:
        """A forked worker: its own process group (the terminal's Ctrl-C reaches only the parent, which
        passes it on once), a thread that stops it when the parent is gone, then the server."""
        try:
            for sig in (*_STOP_SIGNALS, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            os.setpgid(0, 0)
            for fd in (self.ready_read, self.watch_write, self.wake_read, self.wake_write):
                os.close(fd)
            mine = self.sockets[slot]
            for other in self.sockets:  # a socket the parent gives up must not stay open here
                if other is not None and other is not mine:
                    other.close()
            threading.Thread(target=_stop_when_parent_exits, args=(self.watch_read,), daemon=True).start()
            ready_write = self.ready_write
            self.serve(mine, lambda: os.write(ready_write, _PID.pack(os.getpid())))
            return 0
        except KeyboardInterrupt:
            return 0
        except BaseException as exc:  # noqa: BLE001 - a worker must never return into the parent's code
            print(f"rnnkit serve: worker {os.getpid()} failed: {exc!r}", file=sys.stderr, flush=True)
            return 1
        finally:
            sys.stderr.flush()

    def _reap(self) -> None:
        """Handle every worker that has exited since the last look."""
        while self.workers:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self._on_exit(pid, worker, code)
            if self.stop_requested:
                return

    def _on_exit(self, pid: int, worker: _Worker, code: int) -> None:
        if worker.ready:
            _say(f"worker {pid} stopped ({_describe(code)}); starting another")
            self._start(worker.slot, replacing=pid)
            return
        if not self.announced and worker.replacing is None and not any(w.ready for w in self.workers.values()):
            _say(f"worker {pid} stopped at start-up ({_describe(code)}); stopping")
            self.status = 1
            self.stop_requested = True
            return
        self.failures[worker.slot] += 1
        failures = self.failures[worker.slot]
        if failures >= MAX_STARTUP_FAILURES:
            _say(f"worker {pid} stopped at start-up ({_describe(code)}), {failures} times in a row on this "
                 f"socket; giving it up, the other workers go on serving")
            self.sockets[worker.slot].close()
            self.sockets[worker.slot] = None
            return
        delay = min(RETRY_BASE_SECONDS * 2 ** (failures - 1), RETRY_MAX_SECONDS)
        _say(f"worker {pid} stopped at start-up ({_describe(code)}); trying again in {delay:g} s")
        self.retry_at[worker.slot] = (time.monotonic() + delay, worker.replacing or pid)

    def _start_due_retries(self) -> None:
        now = time.monotonic()
        for slot, (when, replacing) in list(self.retry_at.items()):
            if when <= now:
                del self.retry_at[slot]
                self._start(slot, replacing=replacing)

    def _stop_all(self) -> None:
        """SIGTERM every worker (a graceful stop) and wait for them; SIGKILL any still running after the grace."""
        for pid in self.workers:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self.workers and time.monotonic() < deadline:
            for pid in list(self.workers):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    self.workers.pop(pid)
            if self.workers:
                select.select([self.wake_read], [], [], 0.05)  # SIGCHLD wakes it early
                _drain(self.wake_read)
        for pid in self.workers:
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self.workers.clear()


def _stop_when_parent_exits(watch_read: int) -> None:
    while os.read(watch_read, 1):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def _drain(fd: int) -> None:
    os.set_blocking(fd, False)
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(fd, True)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _say(message: str) -> None:
    print(f"rnnkit serve: {message}", file=sys.stderr, flush=True)


def _describe(code: int) -> str:
    if os.WIFSIGNALED(code):
        return f"signal {signal.Signals(os.WTERMSIG(code)).name}"
    return f"exit status {os.WEXITSTATUS(code)}"

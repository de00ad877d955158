"""The `serve --workers` supervisor on its own: readiness, replacement, start-up failures, stop signals.

Each test runs `run_workers` in a real process over a trivial server (it answers every connection with
its pid), so the supervisor's events are real forks, exits and signals, and no test waits on a clock:
every wait is for a line in the log, a file, or an exit, with a deadline that only bounds a hang.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="--workers above 1 needs Linux")

SERVER = r"""
import os, socket, sys
from pathlib import Path
from rnnkit.serve import workers

workers.RETRY_BASE_SECONDS = 0.01
state, count = Path(sys.argv[1]), int(sys.argv[2])

def serve(sock, ready):
    (state / f"started-{os.getpid()}").touch()
    if (state / "fail").exists():
        raise RuntimeError("cannot start")
    ready()
    while True:
        conn, _ = sock.accept()
        conn.sendall(str(os.getpid()).encode())
        conn.close()

first = socket.socket()
first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
first.bind(("127.0.0.1", 0))
print(f"port {first.getsockname()[1]}", file=sys.stderr, flush=True)
sys.exit(workers.run_workers(workers.reuseport_sockets(first, count), serve))
"""

DEADLINE = 120  # seconds: bounds a hang, never decides a result


class Supervisor:
    def __init__(self, state: Path, count: int):
        self.state = state
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(state), str(count)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line)

    def text(self) -> str:
        return "".join(self.log)

    def wait_for(self, condition, what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            assert time.monotonic() < deadline, f"never {what}: {self.text()}"
            time.sleep(0.02)

    def wait_for_log(self, text: str) -> None:
        self.wait_for(lambda: text in self.text(), f"logged {text!r}")

    def port(self) -> int:
        self.wait_for_log("port ")
        return int(self.text().split("port ")[1].split()[0])

    def started(self) -> set[int]:
        return {int(p.name.split("-")[1]) for p in self.state.glob("started-*")}

    def workers(self) -> set[int]:
        return {int(c) for c in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()}

    def answer(self) -> int:
        with socket.create_connection(("127.0.0.1", self.port()), timeout=DEADLINE) as conn:
            return int(conn.recv(64))

    def finish(self) -> int:
        try:
            return self.proc.wait(timeout=DEADLINE)
        finally:
            self.proc.kill()


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_crashed_worker_is_replaced_and_a_failing_replacement_is_retried_then_given_up(tmp_path):
    sup = Supervisor(tmp_path, 2)
    sup.wait_for_log("2 workers ready")
    first, second = sorted(sup.workers())
    os.kill(first, signal.SIGKILL)  # a crash after start-up: replaced at once
    sup.wait_for_log(f"(replacing worker {first})")
    third = next(iter(sup.workers() - {second}))
    (tmp_path / "fail").touch()  # from now on a new worker cannot start
    os.kill(third, signal.SIGKILL)
    sup.wait_for_log("giving it up")
    assert sup.proc.poll() is None, sup.text()  # the healthy worker still serves
    assert sup.text().count("trying again") == 4
    assert {sup.answer() for _ in range(10)} == {second}  # the given-up socket is closed: no connection waits there
    sup.proc.send_signal(signal.SIGTERM)
    assert sup.finish() == 0, sup.text()
    assert all(gone(pid) for pid in sup.started())


def test_the_server_stops_when_no_worker_can_start(tmp_path):
    (tmp_path / "fail").touch()
    sup = Supervisor(tmp_path, 2)
    assert sup.finish() == 1
    assert "stopped at start-up" in sup.text() and "cannot start" in sup.text()
    assert all(gone(pid) for pid in sup.started())


@pytest.mark.parametrize("after_forks", [1, 3, 6, 8])
def test_a_stop_signal_while_workers_are_forked_stops_every_worker(tmp_path, after_forks):
    sup = Supervisor(tmp_path, 8)
    sup.wait_for(lambda: len(sup.started()) >= after_forks, f"forked {after_forks} workers")
    sup.proc.send_signal(signal.SIGTERM)
    assert sup.finish() == 0, sup.text()
    assert all(gone(pid) for pid in sup.started()), f"the server exited before its workers: {sup.text()}"

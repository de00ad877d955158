"""One BLAS thread for the recurrent layer's matmuls.

A recurrent layer's matmuls are small: T of (N, H) x (H, G*H) inside the
loop, and, since the layer works in chunks of a few steps (see
`rnnkit.numpy_engine.recurrent`), the input projection and gradients of one
chunk at a time, (16*N, D) x (D, G*H). For work of this size OpenBLAS's
threads cost more than they save. Measured on the project's 2-core machine
(shared, busy): a (64, 128) x (128, 512) float32 matmul took 75-125 us on one
thread and 320-650 us on two; a weight gradient over a whole batch, a
(128, 12800) x (12800, 128) product, 4-12 ms on one and 8-200 ms on two (with
idle threads sleeping; spinning was worse). So the layer runs its steps'
matmuls on one thread. The chunk-sized ones, (16*N, D) x (D, G*H) and the
chunk's weight gradients, gain from a second thread on an idle machine
(124 -> 102-110 ms per LSTM training step), so they use BLAS's thread count,
which `set_threads` (`rnnkit train --engine numpy --threads N`) sets.

`single_threaded()` switches numpy's BLAS to one thread and back (a direct
call into the library, about 1 us) through threadpoolctl when it is
installed; without it, it does nothing. It only lowers the thread count: a
caller that already limited BLAS (``rnnkit serve --threads 1``) is left as is.

With two or more BLAS threads allowed, a layer does better than splitting
each matmul: `Overlap` runs the chunks' matmuls on a helper thread (one BLAS
thread each) while the calling thread runs the steps, so both cores work on
different things at once. The steps are a chain of small calls that no BLAS
threading speeds up; the chunks' matmuls do not depend on them (the next
chunk's input share, the last chunk's weight gradients). numpy releases the
GIL inside BLAS, so the two threads run in parallel.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Callable, Iterator

_lock = threading.Lock()
_controllers: list | None = None  # numpy's BLAS libraries, found on first use (threadpoolctl scans once)


def _numpy_blas() -> list:
    """threadpoolctl's controllers of the BLAS numpy is linked to ([] without threadpoolctl)."""
    global _controllers
    with _lock:
        if _controllers is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                _controllers = []
            else:
                import numpy as np  # noqa: F401 - its BLAS must be loaded before the scan

                _controllers = [lib for lib in ThreadpoolController().lib_controllers
                                if lib.user_api == "blas" and _is_numpys(lib.filepath)]
    return _controllers


def _is_numpys(path: str) -> bool:
    """True for the BLAS shipped with numpy (numpy.libs / numpy/.dylibs) or a system BLAS, not torch's MKL."""
    return "torch" not in path.replace("\\", "/").split("/site-packages/")[-1].split("/")[0]


@contextlib.contextmanager
def single_threaded(enabled: bool = True) -> Iterator[None]:
    """Run the block with numpy's BLAS on one thread; restore the previous count afterwards.

    enabled=False does nothing (so callers can decide per input size).
    """
    changed = []
    for lib in _numpy_blas() if enabled else ():
        before = lib.get_num_threads()
        if before and before > 1:
            lib.set_num_threads(1)
            changed.append((lib, before))
    try:
        yield
    finally:
        for lib, before in changed:
            lib.set_num_threads(before)


def set_threads(count: int) -> None:
    """Give numpy's BLAS `count` threads from now on, process-wide (`rnnkit train --threads N --engine numpy`)."""
    if count < 1:
        raise ValueError(f"count must be at least 1; got {count}")
    for lib in _numpy_blas():
        lib.set_num_threads(count)


def get_threads() -> int:
    """numpy's BLAS thread count (1 when threadpoolctl is not installed: nothing can be changed then)."""
    return max((lib.get_num_threads() or 1 for lib in _numpy_blas()), default=1)


_helper: tuple[int, ThreadPoolExecutor] | None = None  # (the pid that started it, the executor)


def _helper_thread() -> ThreadPoolExecutor:
    """The process's one helper thread for `Overlap` (started on first use, and again in a forked child:
    a fork copies the executor but not its thread, and work sent to it would wait forever)."""
    global _helper
    with _lock:
        if _helper is None or _helper[0] != os.getpid():
            _helper = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-blas"))
    return _helper[1]


class Overlap:
    """Run matmul-heavy work on a helper thread beside the caller's, when BLAS may use two threads.

        with Overlap(enabled=T > CHUNK) as overlap:
            job = overlap.run(project, chunk)    # a Future; runs on the helper (or here, at once)
            ...                                  # the caller's own work
            job.result()                         # wait for it (and raise what it raised)

    Enabled (and `get_threads() > 1`), every BLAS call inside the block runs on one
    thread, the caller's and the helper's alike, and `run` queues work on the helper
    thread in order. Otherwise `run` calls the function at once in the caller with
    BLAS's own threads (the layer's behaviour without a second core). Leaving the
    block waits for every queued job, so no job outlives the buffers it writes;
    on an error, jobs not yet started are cancelled.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.parallel = enabled and get_threads() > 1
        self._jobs: list[Future] = []
        self._single = None

    def __enter__(self) -> "Overlap":
        if self.parallel:
            self._single = single_threaded()
            self._single.__enter__()
        return self

    def run(self, fn: Callable, *args) -> Future:
        if self.parallel:
            job = _helper_thread().submit(fn, *args)
        else:
            job = Future()
            job.set_result(fn(*args))
        self._jobs.append(job)
        return job

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is not None:
                for job in self._jobs:
                    job.cancel()
            wait(self._jobs)
            if kind is None:
                for job in self._jobs:
                    job.result()  # raise a helper's error that nobody waited for
        finally:
            if self._single is not None:
                self._single.__exit__(None, None, None)

"""One BLAS thread where more cost more than they save.

A recurrent layer makes two kinds of matmul: a few big ones over all T*N rows
at once (the input projection before the loop, the weight gradients after
it), which can gain from more BLAS threads, and T small ones inside the loop
(h_prev W_hh^T, (N, H) x (H, G*H)), each a few microseconds of work for
which OpenBLAS still wakes and joins its threads. Measured on the project's
2-core machine (shared, busy): a (64, 128) x (128, 512) float32 matmul took
75-125 us on one thread and 320-650 us on two; the (230, 128) x (128, 512)
input projection of one review 5-9 ms on one and 20-30 ms on two; a weight
gradient, a (128, 12800) x (12800, 128) product (a small result summed over
T*N rows), 4-12 ms on one and 8-200 ms on two (OpenBLAS with idle threads
sleeping; spinning was worse). So the loop and the weight gradients always
run on one thread, and so does every matmul of a layer whose input has fewer
than SMALL_ROWS rows (T*N); the input projection and input gradient of a
training batch use whatever the caller allowed.

`single_threaded()` switches numpy's BLAS to one thread and back (a direct
call into the library, about 1 us) through threadpoolctl when it is
installed; without it, it does nothing. It only lowers the thread count: a
caller that already limited BLAS (``rnnkit serve --threads 1``) is left as is.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

SMALL_ROWS = 4096  # T*N below which a layer's big matmuls (<= ~0.5 GFLOP at 128 -> 512) stay on one thread

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

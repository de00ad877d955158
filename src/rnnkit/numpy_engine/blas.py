"""One BLAS thread inside the time loop.

A recurrent layer makes two kinds of matmul: a few big ones over all T*N rows
at once (the input projection before the loop, the weight gradients after
it), which gain from every BLAS thread, and T small ones inside the loop
(h_prev W_hh^T, (N, H) x (H, G*H)), each a few microseconds of work for
which OpenBLAS still wakes and joins its threads. Measured on the project's
2-core machine (bench/numpy_engine.py): a (64, 128) x (128, 512) float32
matmul took 75-125 us on one thread and 320-650 us on two, so the loop runs
on one thread and the big matmuls on whatever the caller allowed.

`single_threaded()` switches numpy's BLAS to one thread and back (a direct
call into the library, about 1 us) through threadpoolctl when it is
installed; without it, it does nothing. It only lowers the thread count: a
caller that already limited BLAS (``rnnkit serve --threads 1``) is left as is.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

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
def single_threaded() -> Iterator[None]:
    """Run the block with numpy's BLAS on one thread; restore the previous count afterwards."""
    changed = []
    for lib in _numpy_blas():
        before = lib.get_num_threads()
        if before and before > 1:
            lib.set_num_threads(1)
            changed.append((lib, before))
    try:
        yield
    finally:
        for lib, before in changed:
            lib.set_num_threads(before)

"""Check hand-written gradients against central finite differences, in float64.

For a scalar function f of named arrays, the numerical gradient of element j
of array a is ``(f(a_j + eps) - f(a_j - eps)) / (2 eps)``: its error is
about ``eps^2 |f'''|`` from the Taylor series plus ``1e-16 |f| / eps`` from
rounding. eps = 1e-5 (near the cube root of float64's epsilon, where the two
balance) leaves about 1e-11 absolute, so even a parameter whose gradients are
as small as 1e-4 is checked to 1e-6 relative, while any real mistake in a
backward pass (a wrong sign, a missing term, a transposed weight) makes
errors of order 1. In float32 the rounding term alone is about 1e-2: never
check in float32.

    def f(arrays):                       # any scalar function of the arrays
        out, _ = lstm_step(arrays["xw"], (arrays["h"], arrays["c"]), arrays["w_hh"])
        return float(np.sum(out[0] * upstream))
    errors = check_gradients(f, arrays, analytic)          # name -> relative error
    assert max(errors.values()) <= 1e-6

The arrays are perturbed *in place* (and restored), so a layer or model that
holds them by reference sees each change: f may simply rerun its forward.

Relative error of one array: ``max |analytic - numeric| / max(max |analytic|,
max |numeric|)``, i.e. the worst element's error measured against the
array's own scale, which does not blow up at elements that happen to be ~0.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Function = Callable[[dict[str, np.ndarray]], float]


def numerical_gradient(f: Function, arrays: dict[str, np.ndarray], name: str, eps: float = 1e-5) -> np.ndarray:
    """d f / d arrays[name] by central differences (same shape as the array)."""
    a = arrays[name]
    if a.dtype != np.float64:
        raise TypeError(f"gradcheck needs float64 arrays; {name!r} is {a.dtype} (rounding would swamp the check)")
    grad = np.zeros_like(a)
    flat, out = a.reshape(-1), grad.reshape(-1)  # views: writing flat[j] changes arrays[name]
    if not np.shares_memory(flat, a):
        raise ValueError(f"{name!r} must be contiguous so it can be perturbed in place")
    for j in range(flat.size):
        kept = flat[j]
        flat[j] = kept + eps
        plus = f(arrays)
        flat[j] = kept - eps
        minus = f(arrays)
        flat[j] = kept
        out[j] = (plus - minus) / (2.0 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |analytic - numeric| / max(max |analytic|, max |numeric|); 0 when both are all zero."""
    if np.shape(analytic) != np.shape(numeric):
        raise ValueError(f"gradient shapes differ: analytic {np.shape(analytic)}, numeric {np.shape(numeric)}")
    scale = max(float(np.max(np.abs(analytic), initial=0.0)), float(np.max(np.abs(numeric), initial=0.0)))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(np.asarray(analytic) - numeric))) / scale


def check_gradients(f: Function, arrays: dict[str, np.ndarray], analytic: dict[str, np.ndarray],
                    eps: float = 1e-5) -> dict[str, float]:
    """Relative error of every analytic gradient (name -> array) against central differences of f.

    Every name in `analytic` must be in `arrays`; copy the analytic gradients
    before calling if the function's backward reuses their buffers.
    """
    missing = sorted(set(analytic) - set(arrays))
    if missing:
        raise KeyError(f"gradients given for arrays that f does not take: {missing}")
    return {name: relative_error(analytic[name], numerical_gradient(f, arrays, name, eps)) for name in analytic}


def assert_gradients_close(f: Function, arrays: dict[str, np.ndarray], analytic: dict[str, np.ndarray],
                           tolerance: float = 1e-6, eps: float = 1e-5) -> dict[str, float]:
    """check_gradients, raising AssertionError naming every array whose relative error exceeds `tolerance`."""
    errors = check_gradients(f, arrays, analytic, eps)
    bad = {name: error for name, error in errors.items() if not error <= tolerance}
    if bad:
        listed = ", ".join(f"{name}: {error:.2e}" for name, error in sorted(bad.items(), key=lambda kv: -kv[1]))
        raise AssertionError(f"gradients differ from finite differences (tolerance {tolerance:.0e}): {listed}")
    return errors

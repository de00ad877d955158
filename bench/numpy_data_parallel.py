"""Would splitting the batch across two threads train the numpy engine faster than `blas.Overlap`?

    python bench/numpy_data_parallel.py            # writes bench/results/numpy_data_parallel.json

The LSTM training step of bench/numpy_engine.py (batch 64, 200 steps, 128 -> 128, forward + backward,
float32), four ways, interleaved, medians:
- "one_thread": the whole batch on one thread, one BLAS thread;
- "overlap_two_threads": what the engine does with two BLAS threads allowed: the steps on this thread, the
  chunks' matmuls on a helper thread (`rnnkit.numpy_engine.blas.Overlap`);
- "data_parallel_two_threads": two copies of the layer, each stepping half the batch (32 rows) on its own
  thread with one BLAS thread (numpy and OpenBLAS release the GIL inside each call), the gradients summed;
- "half_batch_one_thread": one of those halves alone, for what a half costs without the other beside it.

The answer decides whether the engine should split batches across threads: it only pays if
data_parallel_two_threads beats overlap_two_threads clearly. Numbers move with the machine's load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.update({"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"})  # as bench/numpy_engine.py

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from rnnkit.numpy_engine.recurrent import StackedRecurrent  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from common import machine, write_results  # noqa: E402
from numpy_engine import engines, interleaved  # noqa: E402


def steps(T=200, N=64, D=128, H=128) -> dict:
    """The four ways, as zero-argument functions (the BLAS thread count is set around each by the caller)."""
    module, stack, x, dout = engines("lstm", T, N, D, H)
    params = {name: p.detach().numpy().copy() for name, p in module.named_parameters()}
    halves = [StackedRecurrent("lstm", params, "", 1, False) for _ in range(2)]
    xs = [np.ascontiguousarray(part) for part in (x[:, :N // 2], x[:, N // 2:])]
    douts = [np.ascontiguousarray(part) for part in (dout[:, :N // 2], dout[:, N // 2:])]
    helper = ThreadPoolExecutor(1)

    def half(k: int) -> None:
        halves[k].forward(xs[k])
        halves[k].backward(douts[k])

    def data_parallel() -> None:
        other = helper.submit(half, 1)
        half(0)
        other.result()
        for name, grad in halves[0].named_gradients().items():  # the whole batch's gradient
            grad += halves[1].named_gradients()[name]

    def whole() -> None:
        stack.forward(x)
        stack.backward(dout)

    return {"one_thread": whole, "overlap_two_threads": whole, "data_parallel_two_threads": data_parallel,
            "half_batch_one_thread": lambda: half(0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "numpy_data_parallel.json"))
    args = parser.parse_args()
    runs = steps()
    with threadpool_limits(limits=1, user_api="blas"):
        one = interleaved({k: runs[k] for k in ("one_thread", "data_parallel_two_threads", "half_batch_one_thread")},
                          args.repeats)
    with threadpool_limits(limits=2, user_api="blas"):
        two = interleaved({"overlap_two_threads": runs["overlap_two_threads"]}, args.repeats)
    times = {**one, **two}
    medians = {k: round(statistics.median(v) * 1e3, 2) for k, v in times.items()}
    results = {"command": "python bench/numpy_data_parallel.py " + " ".join(sys.argv[1:]),
               "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
               "step": "lstm, batch 64 x 200 steps, 128 -> 128, forward + backward, float32",
               "median_ms": medians,
               "data_parallel_over_overlap": round(medians["data_parallel_two_threads"]
                                                   / medians["overlap_two_threads"], 3),
               "runs_ms": {k: [round(t * 1e3, 1) for t in v] for k, v in times.items()}}
    print(json.dumps(medians), "data parallel / overlap:", results["data_parallel_over_overlap"])
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The numpy engine against torch.nn, side by side in one process: float32, the same weights, the same threads.

    python bench/numpy_engine.py                 # writes bench/results/numpy_engine.json
    python bench/numpy_engine.py --separate      # + each engine alone, libraries' default threading
    python bench/numpy_engine.py --repeats 5 --out /tmp/quick.json

Measured (medians of interleaved runs; which engine goes first alternates):
- one training step (forward + backward, input gradient included) of a 1-layer
  LSTM, GRU and vanilla RNN: batch 64, 200 steps, input 128, hidden 128; the
  numpy `StackedRecurrent` against `torch.nn.LSTM/GRU/RNN`;
- inference only, batch 1, one 230-token review, each cell: the inference-only
  path that `predict` and `serve` run (`numpy_engine.inference`) against
  torch.nn under inference_mode (`ratio`), and the training forward, which keeps
  what BPTT needs (`training_forward_ratio`); both against torch's faster
  setting, --threads or one thread (a 230-step chain of small ops); and the same path's
  matmuls alone (`matmuls_only_ratio`: the projection and one vector-matrix product a step,
  no elementwise op), the floor under any numpy loop;
- with one thread each, the numpy LSTM step's matmuls alone (`matmuls_only_ratio`, its shapes
  and order, no elementwise op) against torch's whole step;
- the LSTM step's GFLOP/s (matmul FLOPs only: 6 T N 4H (D + H), forward + both
  backward products) and this machine's float32 matmul peak (a 2048^3 np.matmul,
  best of several, same threads) — their quotient is the fraction of peak;
- `rnnkit predict --engine numpy|torch BUNDLE "text"` as a whole process
  (interpreter start, imports, bundle load, one prediction), on a default-size
  untrained classify bundle (bidirectional GRU 128, vocabulary 30,000), with
  rnnkit's bytecode compiled as an installed package has it.

Threads: numpy's BLAS through threadpoolctl, torch.set_num_threads; both --threads (default 2).
The numpy engine runs its per-step matmuls on one BLAS thread and, with two threads allowed, the
chunks' matmuls on a helper thread beside the steps (rnnkit.numpy_engine.blas.Overlap).
Idle threads sleep instead of spinning, in both engines (--spin keeps the libraries'
defaults): OMP_WAIT_POLICY=PASSIVE for torch's OpenMP and OPENBLAS_THREAD_TIMEOUT=4
for numpy's OpenBLAS, set before either library loads. On this project's shared
2-core machine (load average 6-8, a higher-priority job running) spinning threads
starve the one doing the work: a 2-thread nn.LSTM step took 10.2-11.1 s with
libgomp's default and 0.25-0.26 s passive; the numpy step 0.27-0.40 s with
OpenBLAS's default and 0.21 s with the short timeout. Every number here moves
with the load: the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


SLEEPING_THREADS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
if "--spin" not in sys.argv:  # must be in the environment before numpy and torch load their thread pools
    os.environ.update(SLEEPING_THREADS)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from rnnkit.numpy_engine.recurrent import StackedRecurrent  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from common import machine, write_results  # noqa: E402
MODULES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
REVIEW = "This movie is really bad. I do not like it."


def interleaved(runs: dict, repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds of each zero-argument function in `runs`, alternating them and which goes first."""
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            started = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - started)
    return times


def engines(cell: str, T: int, N: int, D: int, H: int, seed: int = 0):
    """A torch.nn module and the numpy stack with its weights, an input (T, N, D) and an upstream gradient."""
    torch.manual_seed(seed)
    module = MODULES[cell](D, H)
    params = {name: p.detach().numpy().copy() for name, p in module.named_parameters()}
    stack = StackedRecurrent(cell, params, "", 1, False)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, D)).astype(np.float32)
    dout = rng.standard_normal((T, N, H)).astype(np.float32)
    return module, stack, x, dout


def train_steps(cell: str, T=200, N=64, D=128, H=128) -> tuple[dict, int]:
    """One training step (forward + backward) of each engine, as zero-argument functions; and its matmul FLOPs."""
    module, stack, x, dout = engines(cell, T, N, D, H)
    x_t, dout_t = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dout)

    def numpy_step():
        stack.forward(x)
        stack.backward(dout)

    def torch_step():
        module.zero_grad(set_to_none=True)
        x_t.grad = None
        out, _ = module(x_t)
        out.backward(dout_t)

    return {"numpy": numpy_step, "torch": torch_step}, 6 * T * N * GATES[cell] * H * (D + H)


def step_summary(times: dict[str, list[float]], flops: int) -> dict:
    numpy_s, torch_s = statistics.median(times["numpy"]), statistics.median(times["torch"])
    return {"numpy_ms": round(numpy_s * 1e3, 2), "torch_ms": round(torch_s * 1e3, 2),
            "ratio": round(numpy_s / torch_s, 3), "numpy_gflops": round(flops / numpy_s / 1e9, 2),
            "torch_gflops": round(flops / torch_s / 1e9, 2), "flops": flops,
            "numpy_runs_ms": [round(t * 1e3, 1) for t in times["numpy"]],
            "torch_runs_ms": [round(t * 1e3, 1) for t in times["torch"]]}


def train_step(cell: str, repeats: int, with_floor: bool = False) -> dict:
    """Both engines in this process, interleaved; with_floor: also the numpy step's matmuls alone."""
    steps, flops = train_steps(cell)
    if not with_floor:
        return step_summary(interleaved(steps, repeats), flops)
    times = interleaved({**steps, "numpy_matmuls_only": step_matmuls(cell)}, repeats)
    floor_s, torch_s = statistics.median(times.pop("numpy_matmuls_only")), statistics.median(times["torch"])
    return {**step_summary(times, flops), "numpy_matmuls_only_ms": round(floor_s * 1e3, 2),
            "matmuls_only_ratio": round(floor_s / torch_s, 3)}


def step_matmuls(cell: str, T=200, N=64, D=128, H=128):
    """The numpy training step's matmuls and nothing else, with its shapes and in its order (recurrent.py): per
    chunk of CHUNK steps the input share, then one (N, H) x (H, G*H) product a step; backwards one
    (N, G*H) x (G*H, H) product a step, then the chunk's two weight gradients and dx. A floor under the step
    on the same threads: what is left above it is the elementwise work."""
    from rnnkit.numpy_engine.recurrent import CHUNK

    rng = np.random.default_rng(0)
    G = GATES[cell]
    x, w_ih, w_hh, h, h_prev, dxw = (rng.standard_normal(shape).astype(np.float32) for shape in (
        (CHUNK * N, D), (G * H, D), (G * H, H), (N, H), (CHUNK * N, H), (CHUNK * N, G * H)))
    xw, hw = np.empty((CHUNK * N, G * H), np.float32), np.empty((N, G * H), np.float32)
    dh, dx = np.empty((N, H), np.float32), np.empty((CHUNK * N, D), np.float32)
    dw_ih, dw_hh = np.empty((G * H, D), np.float32), np.empty((G * H, H), np.float32)
    chunks = range(T // CHUNK)

    def run():
        for _ in chunks:
            np.matmul(x, w_ih.T, out=xw)
            for _ in range(CHUNK):
                np.matmul(h, w_hh.T, out=hw)
        for _ in chunks:
            for t in range(CHUNK):
                np.matmul(dxw[t * N:(t + 1) * N], w_hh, out=dh)
            np.matmul(dxw.T, x, out=dw_ih)
            np.matmul(dxw.T, h_prev, out=dw_hh)
            np.matmul(dxw, w_ih, out=dx)
    return run


def train_step_separate(cell: str, repeats: int, threads: int, rounds: int = 4) -> dict:
    """Each engine alone in a fresh process with the libraries' default threading (idle threads spin).

    In one process, one library's spinning threads take the cores from the other's
    work (numpy's OpenBLAS after its matmuls, torch's OpenMP after its ops), so
    with spinning defaults the engines are timed apart: `rounds` processes per
    engine, alternating, each timing ceil(repeats / rounds) steps after a warm-up.
    """
    per_process = -(-repeats // rounds)
    env = {k: v for k, v in os.environ.items() if k not in SLEEPING_THREADS}  # this process set them
    times: dict[str, list[float]] = {"numpy": [], "torch": []}
    for r in range(rounds):
        for engine in (("numpy", "torch") if r % 2 == 0 else ("torch", "numpy")):
            out = subprocess.run([sys.executable, __file__, "--spin", "--alone", engine, "--cell", cell,
                                  "--threads", str(threads), "--repeats", str(per_process)],
                                 check=True, capture_output=True, text=True, env=env).stdout
            times[engine] += json.loads(out.strip().splitlines()[-1])
    return step_summary(times, train_steps(cell)[1])


def time_alone(engine: str, cell: str, repeats: int) -> list[float]:
    """Seconds of `repeats` training steps of one engine (the child process of `train_step_separate`)."""
    steps, _ = train_steps(cell)
    return interleaved({engine: steps[engine]}, repeats)[engine]


def inference(cell: str, repeats: int, T=230, N=1, D=128, H=128) -> dict:
    """Forward only. "numpy": the layer's training forward (it keeps what BPTT needs); "numpy_infer": the
    inference-only path `predict` and `serve` run (`numpy_engine.inference`: projection, then the steps)."""
    from rnnkit.numpy_engine import inference as fast
    from rnnkit.numpy_engine.packing import pack

    module, stack, x, _ = engines(cell, T, N, D, H)
    x_t = torch.from_numpy(x)
    params = {f"rnn.{name}": p.detach().numpy().copy() for name, p in module.named_parameters()}
    weights = fast.layer_weights(cell, params, "rnn.", 0, 1)
    packing = pack(np.full(N, T))
    packed = np.ascontiguousarray(x.reshape(T * N, D))  # time-major (T, N, D) of equal lengths is the packed order

    def torch_run():
        with torch.inference_mode():
            module(x_t)

    def torch_one_thread():  # batch 1 is a chain of small ops: torch's second thread can cost more than it gives
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            torch_run()
        finally:
            torch.set_num_threads(threads)

    times = interleaved({"numpy": lambda: stack.forward(x), "torch": torch_run, "torch_one_thread": torch_one_thread,
                         "numpy_infer": lambda: fast.run_layer(cell, [packed], weights, packing),
                         "numpy_matmuls_only": matmuls_only(packed, weights.flat)},
                        repeats)
    numpy_s, torch_s, torch_1_s, infer_s, floor_s = (
        statistics.median(times[k]) for k in ("numpy", "torch", "torch_one_thread", "numpy_infer", "numpy_matmuls_only"))
    best_torch = min(torch_s, torch_1_s)  # the ratios are against torch's faster setting
    return {"numpy_ms": round(numpy_s * 1e3, 3), "numpy_infer_ms": round(infer_s * 1e3, 3),
            "torch_ms": round(torch_s * 1e3, 3), "torch_one_thread_ms": round(torch_1_s * 1e3, 3),
            "ratio": round(infer_s / best_torch, 3), "training_forward_ratio": round(numpy_s / best_torch, 3),
            "numpy_matmuls_only_ms": round(floor_s * 1e3, 3), "matmuls_only_ratio": round(floor_s / best_torch, 3)}


def matmuls_only(packed: np.ndarray, flat):
    """The inference path's matmuls and nothing else: the input projection, then one (H,) x (H, G*H) product a
    step on one BLAS thread, as `inference.recur_one` makes them. No gate, no state: a floor under any numpy
    loop that spends one call per elementwise op."""
    from rnnkit.numpy_engine import blas

    def run():
        pre = np.matmul(packed, flat.w_ih)
        pre += flat.bias
        h = np.zeros(flat.w_hh.shape[0], pre.dtype)
        hw = np.empty(flat.w_hh.shape[1], pre.dtype)
        dot, w = np.dot, flat.w_hh
        with blas.single_threaded():
            for _ in range(len(pre)):
                dot(h, w, hw)
    return run


def matmul_peak(repeats: int = 5, size: int = 2048) -> dict:
    """Best float32 GFLOP/s of a size^3 matmul, numpy (this engine's BLAS) and torch."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    out = np.empty_like(a)
    a_t, b_t, out_t = torch.from_numpy(a), torch.from_numpy(b), torch.empty(size, size)
    times = interleaved({"numpy": lambda: np.matmul(a, b, out=out), "torch": lambda: torch.mm(a_t, b_t, out=out_t)},
                        repeats, warmup=1)
    flops = 2 * size ** 3
    return {name: round(flops / min(t) / 1e9, 1) for name, t in times.items()}


def make_bundle(directory: Path) -> Path:
    """A default-size, untrained classify bundle (what `rnnkit train imdb` writes, minus the training)."""
    from rnnkit.bundle import save_bundle
    from rnnkit.config import ModelConfig
    from rnnkit.data.vocab import Vocab
    from rnnkit.numpy_engine import init_parameters

    words = Counter({w: 10 ** 6 - i for i, w in enumerate(REVIEW.lower().replace(".", " .").split())})
    words.update({f"word{i}": 1 for i in range(30000)})
    vocab = Vocab.build(words, max_size=30000)
    config = ModelConfig(vocab_size=len(vocab), cell="gru", embedding_dim=128, hidden_size=128, num_layers=1,
                         bidirectional=True, dropout=0.3, pooling="mean_max")
    from rnnkit.tasks.classify import ClassifySettings

    settings = ClassifySettings(labels=("negative", "positive"), maxlen=500, dataset="imdb")
    save_bundle(directory, "classify", config, vocab.to_json(), init_parameters(config, np.random.default_rng(0)),
                settings=settings.to_json())
    return directory


def predict_process(bundle: Path, repeats: int) -> dict:
    """Whole-process seconds of `rnnkit predict --engine E BUNDLE text`, the engines interleaved.

    rnnkit's bytecode is compiled first, as `pip install` does (this checkout is an
    editable install and its environment sets PYTHONDONTWRITEBYTECODE, so without it
    every run would compile rnnkit's sources again: ~90 ms here).
    """
    import compileall

    import rnnkit

    compileall.compile_dir(Path(rnnkit.__file__).parent, quiet=1)
    def run(engine: str):
        def once():
            proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", "predict", "--engine", engine, str(bundle),
                                   REVIEW], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"rnnkit predict --engine {engine} failed: {proc.stderr}")
        return once

    times = interleaved({"numpy": run("numpy"), "torch": run("torch")}, repeats, warmup=1)
    return {name: round(statistics.median(t), 3) for name, t in times.items()} | {
        "runs": {name: [round(x, 3) for x in t] for name, t in times.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="BLAS and torch threads (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=11, help="timed runs per engine (default %(default)s)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "numpy_engine.json"))
    parser.add_argument("--skip-predict", action="store_true", help="leave out the whole-process predict timing")
    parser.add_argument("--spin", action="store_true",
                        help="keep the thread libraries' default of spinning idle threads (see the module docstring)")
    parser.add_argument("--separate", action="store_true",
                        help="also time each engine's training step alone in its own processes, with the "
                             "libraries' default (spinning) threads: the fair comparison on an idle machine")
    parser.add_argument("--alone", choices=("numpy", "torch"), help=argparse.SUPPRESS)  # a --separate child
    parser.add_argument("--cell", choices=tuple(GATES), default="lstm", help=argparse.SUPPRESS)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.alone:
        with threadpool_limits(limits=args.threads, user_api="blas"):
            print(json.dumps(time_alone(args.alone, args.cell, args.repeats)))
        return 0
    load_before = os.getloadavg()
    results: dict = {"command": " ".join(["python", "bench/numpy_engine.py", *sys.argv[1:]]),
                     "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     "machine": machine(), "threads": args.threads, "repeats": args.repeats,
                     "numpy_loop_blas_threads": 1,
                     "environment": {k: os.environ.get(k) for k in SLEEPING_THREADS}}
    with threadpool_limits(limits=args.threads, user_api="blas"):
        results["matmul_peak"] = matmul_peak()
        print("matmul peak GFLOP/s", results["matmul_peak"], flush=True)
        for cell in ("lstm", "gru", "rnn"):
            results[f"{cell}_train_step"] = train_step(cell, args.repeats)
            print(cell, "train step", {k: v for k, v in results[f"{cell}_train_step"].items()
                                       if not k.endswith("runs_ms")}, flush=True)
        for cell in ("lstm", "gru", "rnn"):
            results[f"{cell}_infer"] = inference(cell, 4 * args.repeats)
            print(cell, "inference", results[f"{cell}_infer"], flush=True)
    if args.threads != 1:  # the same step with one thread each: less sensitive to what else the machine runs
        torch.set_num_threads(1)
        with threadpool_limits(limits=1, user_api="blas"):
            results["matmul_peak_one_thread"] = matmul_peak()
            results["lstm_train_step_one_thread"] = train_step("lstm", args.repeats, with_floor=True)
        torch.set_num_threads(args.threads)
        print("lstm train step, one thread", {k: v for k, v in results["lstm_train_step_one_thread"].items()
                                               if not k.endswith("runs_ms")}, flush=True)
    if args.separate:
        for cell in ("lstm", "gru", "rnn"):
            results[f"{cell}_train_step_separate"] = train_step_separate(cell, args.repeats, args.threads)
            print(cell, "train step, each engine in its own processes (spinning threads)",
                  {k: v for k, v in results[f"{cell}_train_step_separate"].items() if not k.endswith("runs_ms")},
                  flush=True)
    if not args.skip_predict:
        with tempfile.TemporaryDirectory() as tmp:
            results["predict_process"] = predict_process(make_bundle(Path(tmp) / "bundle"), args.repeats)
        print("predict process seconds", {k: v for k, v in results["predict_process"].items() if k != "runs"})
    results["load_average_before_after"] = [round(x, 2) for x in (*load_before, *os.getloadavg())]

    results.update({  # the headline numbers, flat
        "lstm_train_step_ratio_vs_torch": results["lstm_train_step"]["ratio"],
        "gru_train_step_ratio_vs_torch": results["gru_train_step"]["ratio"],
        "rnn_train_step_ratio_vs_torch": results["rnn_train_step"]["ratio"],
        "lstm_infer_ratio_vs_torch": results["lstm_infer"]["ratio"],
        "gru_infer_ratio_vs_torch": results["gru_infer"]["ratio"],
        "rnn_infer_ratio_vs_torch": results["rnn_infer"]["ratio"],
        "lstm_infer_matmuls_only_ratio_vs_torch": results["lstm_infer"]["matmuls_only_ratio"],
        **({"lstm_train_step_one_thread_matmuls_only_ratio_vs_torch":
            results["lstm_train_step_one_thread"]["matmuls_only_ratio"]} if "lstm_train_step_one_thread" in results else {}),
        "lstm_gflops": results["lstm_train_step"]["numpy_gflops"],
        "matmul_peak_gflops": results["matmul_peak"]["numpy"],
        "lstm_fraction_of_peak": round(results["lstm_train_step"]["numpy_gflops"] / results["matmul_peak"]["numpy"], 3),
    })
    if args.separate:
        results.update({f"{cell}_train_step_ratio_vs_torch_separate_spinning":
                        results[f"{cell}_train_step_separate"]["ratio"] for cell in ("lstm", "gru", "rnn")})
    if "predict_process" in results:
        results["predict_process_seconds_numpy"] = results["predict_process"]["numpy"]
        results["predict_process_seconds_torch"] = results["predict_process"]["torch"]
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

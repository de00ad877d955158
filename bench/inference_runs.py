"""How the numpy engine's packed inference steps a run: on views of the packed arrays or on blocks of its own.

    python bench/inference_runs.py            # ~15 s; writes bench/results/inference_runs.json

`inference.recur` steps each run of steps with the same number of sequences n
either on views of the packed arrays (`_run_in_views`) or, for n up to
`inference.BLOCKS_UP_TO`, on contiguous blocks it copies first
(`_run_in_blocks`). This times both for one bidirectional layer (H = D = 128,
float32, one BLAS thread, as `serve` and `predict` run it) on a batch of n
sequences of 100 steps each (one run), for GRU and LSTM, interleaved, the
median of --repeats; and once on a serving-like batch of 8 reviews of 60-400
steps, the threshold as shipped against all views. Per step in microseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from rnnkit.numpy_engine import inference
from rnnkit.numpy_engine.packing import pack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from common import machine  # noqa: E402

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def layer(cell: str, rng: np.random.Generator, H: int = 128) -> inference.LayerWeights:
    """Random PyTorch-named weights of one bidirectional layer, prepared for inference."""
    G = GATES[cell]
    params = {}
    for suffix in ("l0", "l0_reverse"):
        params |= {f"weight_ih_{suffix}": rng.standard_normal((G * H, H)).astype(np.float32) * 0.1,
                   f"weight_hh_{suffix}": rng.standard_normal((G * H, H)).astype(np.float32) * 0.1,
                   f"bias_ih_{suffix}": np.zeros(G * H, np.float32), f"bias_hh_{suffix}": np.zeros(G * H, np.float32)}
    return inference.layer_weights(cell, params, "", 0, 2)


def packed_inputs(weights, lengths: np.ndarray) -> tuple:
    """(the layer's pre-activations, the packing) for a batch of `lengths`, made once per case."""
    packing = pack(lengths)
    x = np.random.default_rng(0).standard_normal((packing.total, 128)).astype(np.float32)
    return inference.project([x, np.take(x, packing.reverse, axis=0)], weights), packing


def per_step_us(cell: str, weights, inputs: tuple, blocks_up_to: int) -> float:
    """Microseconds per step of one `inference.recur` (after a warm-up) with BLOCKS_UP_TO = `blocks_up_to`."""
    pre, packing = inputs
    shipped = inference.BLOCKS_UP_TO
    inference.BLOCKS_UP_TO = blocks_up_to
    try:
        inference.recur(cell, pre, weights, packing)  # warm-up
        started = time.perf_counter()
        inference.recur(cell, pre, weights, packing)
        return (time.perf_counter() - started) / len(packing.sizes) * 1e6
    finally:
        inference.BLOCKS_UP_TO = shipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "inference_runs.json"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    table: dict[str, dict] = {}
    with threadpool_limits(1):
        for cell in GATES:
            weights = layer(cell, rng)
            for n in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32):
                inputs, views, blocks = packed_inputs(weights, np.full(n, 100)), [], []
                for _ in range(args.repeats):  # interleaved: the machine's noise falls on both
                    views.append(per_step_us(cell, weights, inputs, 0))
                    blocks.append(per_step_us(cell, weights, inputs, 10**6))
                table.setdefault(cell, {})[n] = {"views_us": round(statistics.median(views), 1),
                                                 "blocks_us": round(statistics.median(blocks), 1)}
                print(f"{cell} n={n:2d}: views {table[cell][n]['views_us']:6.1f} us, "
                      f"blocks {table[cell][n]['blocks_us']:6.1f} us a step", flush=True)
            lengths = np.random.default_rng(1).integers(60, 400, 8)
            inputs, shipped, views = packed_inputs(weights, lengths), [], []
            for _ in range(args.repeats):
                shipped.append(per_step_us(cell, weights, inputs, inference.BLOCKS_UP_TO))
                views.append(per_step_us(cell, weights, inputs, 0))
            table[cell]["batch_of_8_reviews"] = {"shipped_us": round(statistics.median(shipped), 1),
                                                 "views_us": round(statistics.median(views), 1),
                                                 "lengths": lengths.tolist()}
            print(f"{cell} a batch of 8 of 60-400 steps: shipped {table[cell]['batch_of_8_reviews']['shipped_us']} us, "
                  f"all views {table[cell]['batch_of_8_reviews']['views_us']} us a step", flush=True)
    result = {"per_step": table, "blocks_up_to": inference.BLOCKS_UP_TO, "repeats": args.repeats,
              "setting": "one bidirectional layer, H = D = 128, float32, one BLAS thread; n sequences of 100 steps",
              "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

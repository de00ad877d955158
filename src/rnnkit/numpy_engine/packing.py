"""Packed batches: each time step holds only the sequences still running (as torch's PackedSequence).

Key: N batch, T time (the longest length), S real steps (the sum of the
lengths), K directions, H hidden size.

Sort a batch by length, longest first. At step t the sequences still running
are then a prefix of that order, n_t of them, so a step needs no mask: it
computes rows [0, n_t) and stops. The packed layout lays the steps one after
another, step t's rows at [offsets[t], offsets[t] + n_t), S rows in all:
no row of padding is ever computed.

The reverse direction of a bidirectional layer reads each sequence reversed
within its own length. Its step t needs the same sequences (those longer than
t), so it shares the forward direction's sizes and offsets; its inputs are the
forward-packed rows permuted by `reverse`, which maps packed row (t, i) to
(length_i - 1 - t, i) and is its own inverse.

Consecutive steps with the same n_t form a run. A run's rows are one
contiguous (steps, n, ...) block, so reductions over each sequence's steps
(pooling) take one numpy call per run (at most N runs) instead of one per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Packing:
    """How a batch of lengths is packed.

    Attributes:
        order (N,): the batch row of each sorted sequence (longest first; ties keep their order).
        lengths (N,): the lengths in that order (descending).
        sizes: n_t for t in [0, T): sequences still running at step t (a prefix of `order`).
        offsets: T + 1 packed row numbers; step t is rows [offsets[t], offsets[t] + sizes[t]).
        reverse (S,): packed row (t, i) -> packed row (lengths[i] - 1 - t, i); its own inverse.
        last (N,): the packed row of each sorted sequence's last step.
        runs: (start step, stop step, n) of each run of steps with the same n, in time order.
    """

    order: np.ndarray
    lengths: np.ndarray
    sizes: list[int]
    offsets: list[int]
    reverse: np.ndarray
    last: np.ndarray
    runs: list[tuple[int, int, int]]

    @property
    def total(self) -> int:
        """S: rows in a packed array (real steps of the batch)."""
        return self.offsets[-1]


def pack(lengths: np.ndarray) -> Packing:
    """The packing of a batch with `lengths` (N,), each >= 1."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1 or lengths.size == 0 or lengths.min() < 1:
        raise ValueError(f"lengths must be a non-empty (N,) array of lengths >= 1; got {lengths!r}")
    order = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[order]
    T = int(sorted_lengths[0])
    running = np.arange(T)[:, None] < sorted_lengths[None, :]  # (T, N); row t is True on a prefix
    sizes = running.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    t, i = np.nonzero(running)  # the packed rows, in packed order
    reverse = offsets[sorted_lengths[i] - 1 - t] + i
    last = offsets[sorted_lengths - 1] + np.arange(len(lengths))
    bounds = [0, *(np.flatnonzero(np.diff(sizes)) + 1).tolist(), T]
    runs = [(start, stop, int(sizes[start])) for start, stop in zip(bounds[:-1], bounds[1:])]
    return Packing(order, sorted_lengths, sizes.tolist(), offsets.tolist(), reverse, last, runs)


def pack_ids(ids: np.ndarray, packing: Packing) -> np.ndarray:
    """ids (N, T) post-padded -> (S,) in packed order (time-major, longest sequence first at every step)."""
    sorted_ids = np.asarray(ids)[packing.order].T  # (T', N), T' >= T
    running = np.arange(sorted_ids.shape[0])[:, None] < packing.lengths[None, :]
    return sorted_ids[running]


def run_blocks(packed: np.ndarray, packing: Packing):
    """Yield (n, block) per run: block (K, steps, n, H) is a view of packed (K, S, H) rows of the run."""
    K, _, H = packed.shape
    offsets = packing.offsets
    for start, stop, n in packing.runs:
        yield n, packed[:, offsets[start]:offsets[stop]].reshape(K, stop - start, n, H)


def sum_over_steps(packed: np.ndarray, packing: Packing) -> np.ndarray:
    """packed (K, S, H) -> (K, N, H): each sorted sequence's sum over its steps."""
    K, _, H = packed.shape
    total = np.zeros((K, len(packing.lengths), H), packed.dtype)
    for n, block in run_blocks(packed, packing):
        total[:, :n] += block.sum(axis=1)
    return total


def max_over_steps(packed: np.ndarray, packing: Packing) -> np.ndarray:
    """packed (K, S, H) -> (K, N, H): each sorted sequence's maximum over its steps (no argmax: no backward)."""
    K, _, H = packed.shape
    largest = np.full((K, len(packing.lengths), H), -np.inf, packed.dtype)
    for n, block in run_blocks(packed, packing):
        np.maximum(largest[:, :n], block.max(axis=1), out=largest[:, :n])
    return largest

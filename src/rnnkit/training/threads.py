"""Training threads that give way when other processes use the cores (`--threads 0`, the default).

Why: torch's OpenMP threads (and OpenBLAS's) wait for each other at every
operation by spinning. When another process holds one of the cores, the
thread that lost its core arrives late at every barrier and the others spin
for it: measured on the project's 2-core machine, one training step of the
default IMDB model took 231 ms on 2 threads idle, 297 ms on 1 thread idle,
760 ms on 2 threads beside one busy process and 306 ms on 1 thread beside it.
So the default
is: every core while the machine is otherwise idle, fewer while other
processes are busy.

`ThreadGovernor.tick()` runs after every training step. Every `interval`
seconds it reads how busy the cores this process may run on were
(`/proc/stat`, Linux) and subtracts this process's own CPU time: what is
left is the other processes' load, in cores. The thread count becomes the
cores they leave free (at least 1, at most the starting count); a change
needs two readings in a row that agree, so one burst does not flip it.
Elsewhere than Linux, or when `/proc/stat` cannot be read, nothing changes.
A fixed `--threads N`, `--deterministic` and torchrun runs are never
governed (a changed thread count may change the floating-point sums).
"""

from __future__ import annotations

import math
import os
import time
from typing import Callable

# another process using more than this share of a core takes a thread's core away
BUSY_CORE_SHARE = 0.3


def read_cpu_busy(cpus: set[int]) -> float | None:
    """Seconds the given CPUs have spent busy since boot (all processes), or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            lines = stat.read().splitlines()
    except OSError:
        return None
    ticks = 0
    found = False
    for line in lines:
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            fields = [int(x) for x in rest.split()]
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
            ticks += sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
            found = True
    return ticks / os.sysconf("SC_CLK_TCK") if found else None


def own_cpu_seconds() -> float:
    """CPU seconds this process (all its threads) has used."""
    times = os.times()
    return times.user + times.system


def usable_cpus() -> set[int]:
    """The CPUs this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def free_cores(others_load: float, cores: int) -> int:
    """Whole cores left when other processes keep `others_load` cores busy (at least 1)."""
    return max(1, cores - math.ceil(max(0.0, others_load - BUSY_CORE_SHARE)))


class ThreadGovernor:
    """Sets `set_threads(n)` to the cores other processes leave free, at most `most`.

    Args:
        set_threads: applies a thread count (torch.set_num_threads, or numpy's BLAS).
        most: the thread count on an idle machine.
        interval: seconds between readings.
        clock, busy, own: injectable for tests (monotonic seconds; busy CPU seconds; own CPU seconds).
    """

    def __init__(self, set_threads: Callable[[int], None], most: int, interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 busy: Callable[[], float | None] | None = None,
                 own: Callable[[], float] = own_cpu_seconds) -> None:
        cpus = usable_cpus()
        self.set_threads, self.most, self.interval = set_threads, max(1, most), interval
        self.cores = len(cpus)
        self.clock, self.own = clock, own
        self.busy = busy or (lambda: read_cpu_busy(cpus))
        self.threads = self.most
        self.changes: list[tuple[int, int, float]] = []  # (from, to, others' load) for the record
        self._proposed: int | None = None
        self._last = self._reading()

    def _reading(self) -> tuple[float, float | None, float]:
        return self.clock(), self.busy(), self.own()

    def tick(self) -> int | None:
        """Read the load when `interval` has passed; the new thread count if it changed, else None."""
        now = self.clock()
        if now - self._last[0] < self.interval:
            return None
        reading = self._reading()
        (then, busy_then, own_then), (_, busy_now, own_now) = self._last, reading
        self._last = reading
        if busy_then is None or busy_now is None:
            return None
        others = max(0.0, (busy_now - busy_then) - (own_now - own_then)) / (now - then)
        target = min(self.most, free_cores(others, self.cores))
        if target == self.threads:
            self._proposed = None
            return None
        if self._proposed != target:  # a change needs a second reading that agrees
            self._proposed = target
            return None
        self._proposed = None
        self.changes.append((self.threads, target, round(others, 2)))
        self.threads = target
        self.set_threads(target)
        return target

"""Batch the model calls of concurrent requests.

Requests put their encoded texts on a queue; one worker takes everything that
is waiting (up to `batch_texts`), runs the model once on it in a single worker
thread, and hands each request its share. When the server is idle a request is
run at once (no waiting window); under load, the requests that queued up while
the model was busy go together, so 16 concurrent single-text requests cost
about one batched forward pass instead of 16.

Under steady load the answers of one batch go out together and their clients'
next requests come back one by one: taken as they come, the batches alternate
between one request and the rest (measured with 8 clients a worker: a third of
the batches held 1 or 2 requests). So when fewer requests wait than the last
batch held, the worker waits up to `wait_seconds` for that many to gather
(`rnnkit serve --batch-wait-ms`, default 2): 16 clients on 2 workers got 889
-> 1,008 requests/s (`bench/serve.py --serve-arg=--batch-wait-ms=0`, then the
default; medians of 3 runs). A server whose last batch held one request never
waits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


class QueueFull(Exception):
    """More texts are waiting than the limit allows; the caller answers 503."""


@dataclass
class _Job:
    items: Sequence[np.ndarray]
    future: asyncio.Future = field(repr=False)


class Batcher:
    """Runs `fn(items) -> (N,) results` for many callers, batched.

    `executor` runs `fn` (a single worker thread: one model call at a time).
    `wait_seconds`: how long a batch may wait for as many requests as the last one held (0: never).
    Start with `start()` inside the running event loop; `stop()` at shutdown.
    """

    def __init__(self, fn: Callable[[list], np.ndarray], batch_texts: int, max_queued_texts: int,
                 executor: Executor, wait_seconds: float = 0.0) -> None:
        self.fn, self.batch_texts, self.max_queued_texts = fn, batch_texts, max_queued_texts
        self.wait_seconds = wait_seconds
        self._executor = executor  # one thread: the model runs one batch at a time
        self.queued_texts = 0
        self.batches_run = 0
        self._pending: deque[_Job] = deque()
        self._last_batch_jobs = 1
        self._gathering = False  # the worker waits for more requests (`_gather`)
        self._wake: asyncio.Event | None = None
        self._gathered: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._gathered = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self, items: Sequence[np.ndarray]) -> np.ndarray:
        """Results for `items` (N,), computed in some batch with other callers' items."""
        if self.queued_texts + len(items) > self.max_queued_texts:
            raise QueueFull(f"{self.queued_texts} texts are already waiting for the model "
                            f"(limit {self.max_queued_texts}); try again shortly")
        job = _Job(items, asyncio.get_running_loop().create_future())
        self.queued_texts += len(items)
        self._pending.append(job)
        self._wake.set()
        if self._gathering and self._gathered_enough():
            self._gathered.set()
        return await job.future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._gather()
            jobs = self._take()
            self._last_batch_jobs = len(jobs)
            self.queued_texts -= sum(len(job.items) for job in jobs)
            jobs = [job for job in jobs if not job.future.done()]  # callers that timed out are skipped
            if not jobs:
                continue
            items = [item for job in jobs for item in job.items]
            try:
                results = await loop.run_in_executor(self._executor, self.fn, items)
            except Exception as exc:  # the callers turn it into an error response
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self.batches_run += 1
            start = 0
            for job in jobs:
                if not job.future.done():
                    job.future.set_result(results[start:start + len(job.items)])
                start += len(job.items)

    async def _gather(self) -> None:
        """Wait up to `wait_seconds` while fewer requests wait than the last batch held (and fewer texts
        than a batch takes)."""
        if self.wait_seconds <= 0 or self._gathered_enough():
            return
        self._gathering = True
        self._gathered.clear()
        try:
            await asyncio.wait_for(self._gathered.wait(), self.wait_seconds)
        except asyncio.TimeoutError:  # fewer came: the batch goes with what is there
            pass
        finally:
            self._gathering = False

    def _gathered_enough(self) -> bool:
        """As many requests wait as the last batch held, or a batch's worth of texts."""
        return len(self._pending) >= self._last_batch_jobs or self.queued_texts >= self.batch_texts

    def _take(self) -> list[_Job]:
        """The oldest waiting job and every one after it that still fits in one batch."""
        jobs = [self._pending.popleft()]
        count = len(jobs[0].items)
        while self._pending and count + len(self._pending[0].items) <= self.batch_texts:
            jobs.append(self._pending.popleft())
            count += len(jobs[-1].items)
        return jobs

"""Dynamic batching: concurrent requests queued, collected and scored in one forward pass.

The queue is bounded (a full queue is the caller's 503, never unbounded memory). A worker
takes the first job, then keeps collecting until `max_rows` rows or `max_wait_s` since that
first job, groups the collected jobs by the model each was bound to when it arrived (a hot swap
never mixes versions in a result), scores each group on one thread through the one scoring path
and resolves every job's future.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tasks.model.featurize import ArrowEncoder
from tasks.model.predict import forward_encoded
from tasks.serving.champion import Champion
from tasks.serving.online.rows import to_batch

log = logging.getLogger(__name__)


ENCODERS_KEPT = 2  # the served model's and the challenger's


class QueueFull(Exception):
    """More requests are waiting than api.max_queue_requests: answered 503 + Retry-After."""


@dataclass
class Job:
    """Typed rows to score with one model; the future gets their probabilities."""

    model: Champion
    rows: list[dict[str, Any]]
    future: asyncio.Future = field(repr=False)


def group_by_model(jobs: list[Job]) -> list[list[Job]]:
    """The jobs of one collected batch, grouped by the model they are bound to, in order."""
    groups: dict[int, list[Job]] = {}
    for job in jobs:
        groups.setdefault(id(job.model), []).append(job)
    return list(groups.values())


async def collect(queue: asyncio.Queue, max_rows: int, max_wait_s: float) -> list[Job]:
    """The next batch: the first job (waited for), then more until `max_rows` rows are held or
    `max_wait_s` has passed since the first arrived. A lone job (nothing else queued behind it:
    no concurrency to wait for) is scored at once, so one client never pays the wait. A job is
    never split; a job larger than `max_rows` is a batch alone."""
    jobs = [await queue.get()]
    rows = len(jobs[0].rows)
    deadline = time.monotonic() + max_wait_s
    while rows < max_rows:
        try:
            job = queue.get_nowait()
        except asyncio.QueueEmpty:
            remaining = deadline - time.monotonic()
            if len(jobs) == 1:
                break
            if remaining <= 0:
                break
            try:
                job = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                break
        jobs.append(job)
        rows += len(job.rows)
    return jobs


class Batcher:
    """The queue and its worker; `submit` awaits a job's scores."""

    def __init__(
        self,
        max_rows: int,
        max_wait_s: float,
        max_queue: int,
        on_batch: Callable[[int], None] = lambda rows: None,
        torch_threads: int = 1,
        inline_rows: int = 0,
    ):
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=max_queue)
        self.max_rows, self.max_wait_s, self.inline_rows = max_rows, max_wait_s, inline_rows
        self.on_batch = on_batch
        self._encoders: dict[str, ArrowEncoder] = {}  # by model version
        # One scoring thread, with `torch_threads` for a forward pass (process-wide): on few
        # cores the event loop (parsing, answering) needs one of them, and batching gives the
        # speed. A lone job of at most `inline_rows` rows is scored on the event loop itself:
        # the two thread hand-offs cost more than its forward pass (api.inline_rows).
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
        _set_torch_threads(torch_threads)

    async def submit(self, model: Champion, rows: list[dict[str, Any]]) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait(Job(model, rows, future))
        except asyncio.QueueFull:
            raise QueueFull from None
        return await future

    async def run(self) -> None:
        """The worker: collect, score, resolve, forever (cancelled at shutdown)."""
        loop = asyncio.get_running_loop()
        while True:
            jobs = await collect(self.queue, self.max_rows, self.max_wait_s)
            for group in group_by_model(jobs):
                rows = [row for job in group for row in job.rows]
                self.on_batch(len(rows))
                try:
                    if len(jobs) == 1 and len(rows) <= self.inline_rows:
                        scores = self._score(group[0].model, rows)
                    else:
                        scores = await loop.run_in_executor(
                            self.executor, self._score, group[0].model, rows
                        )
                except Exception as exc:  # a scoring fault fails its jobs, not the worker
                    log.exception("api: scoring a batch of %d rows failed", len(rows))
                    for job in group:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                start = 0
                for job in group:
                    end = start + len(job.rows)
                    if not job.future.done():  # a client that went away cancelled it
                        job.future.set_result(scores[start:end])
                    start = end

    def _score(self, model: Champion, rows: list[dict[str, Any]]) -> np.ndarray:
        """The batch's features as Arrow, then the bulk scoring path, with the batcher's
        encoder of the model (kept for the served model and the challenger: a swap retires
        the oldest). One batch at a time: on the scoring thread, or inline."""
        encode = self._encoders.pop(model.version, None) or ArrowEncoder(model.featurizer)
        self._encoders[model.version] = encode  # the most recently used last
        while len(self._encoders) > ENCODERS_KEPT:
            del self._encoders[next(iter(self._encoders))]
        return forward_encoded(model.model, encode(to_batch(model.featurizer, rows)))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _set_torch_threads(threads: int) -> None:
    """torch's thread count for a forward pass (process-wide)."""
    import torch

    torch.set_num_threads(threads)

"""Micro-batching: requests that arrive within a few milliseconds of each other are answered in ONE generation batch
(all their schema groups and windows together), so throughput grows with concurrency instead of queueing.

One worker thread owns the model (generation is CPU/GPU-bound and not thread-safe); the event loop only enqueues
jobs and awaits their futures. The queue is bounded: a request over ``max_queue`` is refused at once (503), and a
request that times out while waiting is skipped, not answered for nobody.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional


class QueueFull(Exception):
    """More requests are waiting than the service accepts."""


class Stopping(Exception):
    """The service is shutting down and accepts no new requests."""


@dataclass
class Job:
    texts: list[str]
    schema: Any
    task: str
    language: Optional[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    abandoned: bool = False  # the client timed out: do not spend generation on it
    plan: Any = field(default=None, repr=False)


class MicroBatcher:
    def __init__(self, extractor, *, wait_ms: float = 10.0, max_prompts: int = 256, max_queue: int = 64):
        self.extractor, self.wait, self.max_prompts, self.max_queue = extractor, wait_ms / 1000, max_prompts, max_queue
        self.jobs: "queue.Queue[Optional[Job]]" = queue.Queue()
        self.pending = 0  # accepted and not yet answered
        self.batches = 0
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="iepile-batcher", daemon=True)
        self.thread.start()

    async def extract(self, texts: list[str], schema: Any, task: str, language: Optional[str],
                      timeout: float) -> list:
        """The extraction results of one request; raises :class:`QueueFull`, :class:`Stopping`,
        :class:`asyncio.TimeoutError`, or the extractor's ``ValueError`` for a bad schema."""
        loop = asyncio.get_running_loop()
        job = Job(texts, schema, task, language, loop, loop.create_future())
        with self.lock:
            if self.stopping:
                raise Stopping()
            if self.pending >= self.max_queue:
                raise QueueFull()
            self.pending += 1
        self.jobs.put(job)
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout)
        except asyncio.TimeoutError:
            job.abandoned = True
            raise

    def close(self, timeout: Optional[float] = None) -> None:
        """Refuse new requests, answer the accepted ones, then stop the worker."""
        with self.lock:
            self.stopping = True
            self.idle.wait_for(lambda: self.pending == 0, timeout)
        self.jobs.put(None)
        self.thread.join(timeout)

    # -- the worker ---------------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self.jobs.get()
            if first is None:
                return
            batch = self._gather(first)
            self._answer(batch)
            with self.lock:
                self.pending -= len(batch)
                self.idle.notify_all()

    def _gather(self, first: Job) -> list[Job]:
        """The first job and those that arrive within ``wait`` seconds, up to ``max_prompts`` prompts."""
        batch = [first]
        prompts = self._plan(first)
        deadline = time.monotonic() + self.wait
        while prompts < self.max_prompts:
            remaining = deadline - time.monotonic()
            try:
                job = self.jobs.get(timeout=max(remaining, 0)) if remaining > 0 else self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:  # close(): finish this batch, then stop
                self.jobs.put(None)
                break
            batch.append(job)
            prompts += self._plan(job)
        return batch

    def _plan(self, job: Job) -> int:
        if job.abandoned:
            return 0
        try:
            job.plan = self.extractor.plan(job.texts, job.schema, job.task, job.language)
        except Exception as error:  # a bad schema: that request's error, not the batch's
            self._settle(job, error=error)
            return 0
        return len(job.plan.prompts)

    def _answer(self, batch: list[Job]) -> None:
        from iepile.inference.generators import answer_instructions

        live = [job for job in batch if job.plan is not None and not job.abandoned and not job.future.done()]
        if not live:
            return
        instructions = [text for job in live for text in job.plan.instructions]
        tasks = [task for job in live for task in job.plan.tasks]
        try:
            answers = answer_instructions(self.extractor.generator, instructions, tasks)
        except Exception as error:
            for job in live:
                self._settle(job, error=error)
            return
        self.batches += 1
        start = 0
        for job in live:
            count = len(job.plan.prompts)
            try:
                self._settle(job, result=self.extractor.finish(job.plan, answers[start:start + count]))
            except Exception as error:
                self._settle(job, error=error)
            start += count

    @staticmethod
    def _settle(job: Job, result: Any = None, error: Optional[BaseException] = None) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        job.loop.call_soon_threadsafe(settle)

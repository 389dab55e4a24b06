"""The worker on every backend: concurrency bounds, leases kept and lost, and graceful shutdown."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import anyio
import pytest

import queuekit
from queuekit import Backend, BackendUnavailableError, JobStatus, Queue, Tasks, Worker
from queuekit.backends.memory import MemoryBackend

from ..setups import BackendSetup
from ..waiting import eventually
from .held import Held
from .options import FAST


async def test_many_jobs_through_four_workers_each_exactly_once(
    queue: Queue, backend_setup: BackendSetup
) -> None:
    total = 5000
    tasks = Tasks()
    runs: Counter[int] = Counter()

    @tasks.task()
    async def count(n: int) -> None:
        runs[n] += 1

    await queue.enqueue_many(queuekit.new_job("count", {"n": n}) for n in range(total))
    clients = [backend_setup.make() for _ in range(3)]
    handles = [queue] + [queuekit.Queue(client) for client in clients]
    async with anyio.create_task_group() as group:
        for handle in handles:
            if handle is not queue:
                await handle.open()
            group.start_soon(Worker(handle, tasks, concurrency=10, **FAST).run_until_empty)
    for handle in handles[1:]:
        await handle.close()
    assert sum(runs.values()) == total
    assert set(runs.values()) == {1}
    stats = await queue.stats()
    assert stats.completed == total and stats.pending == stats.running == 0


async def test_concurrency_bound_holds_at_every_moment(queue: Queue) -> None:
    tasks = Tasks()
    running = peak = 0

    @tasks.task()
    async def busy() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        running -= 1

    await queue.enqueue_many(queuekit.new_job("busy") for _ in range(200))
    assert await Worker(queue, tasks, concurrency=7, **FAST).run_until_empty() == 200
    assert peak == 7


async def test_a_slow_queue_never_starves_a_fast_one(queue: Queue) -> None:
    tasks = Tasks()
    in_slow = peak_slow = 0
    fast_done = anyio.Event()
    fast_count = 0

    @tasks.task()
    async def slow() -> None:
        nonlocal in_slow, peak_slow
        in_slow += 1
        peak_slow = max(peak_slow, in_slow)
        await fast_done.wait()
        in_slow -= 1

    @tasks.task()
    async def fast() -> None:
        nonlocal fast_count
        fast_count += 1
        if fast_count == 20:
            fast_done.set()

    await queue.enqueue_many(queuekit.new_job("slow", queue="slow") for _ in range(10))
    await queue.enqueue_many(queuekit.new_job("fast", queue="fast") for _ in range(20))
    worker = Worker(queue, tasks, queues={"slow": 2, "fast": 5}, concurrency=6, **FAST)
    with anyio.fail_after(20):
        await worker.run_until_empty()
    assert fast_count == 20 and peak_slow == 2


async def test_heartbeat_keeps_a_long_job_owned(queue: Queue, backend: Backend) -> None:
    tasks = Tasks()
    runs = 0

    @tasks.task()
    async def long_job() -> None:
        nonlocal runs
        runs += 1
        await anyio.sleep(2.0)

    # Heartbeats every third of the lease: a busy machine may delay one by most of a second.
    async with Worker(queue, tasks, lease=1.5, **FAST):
        job = await long_job.enqueue(queue)
        await queue.result(job.id, timeout=10)
    done = await queue.get_job(job.id)
    assert runs == 1 and done.attempts == 1 and done.last_error is None


async def test_cancel_stops_a_running_handler(queue: Queue) -> None:
    tasks = Tasks()
    started = anyio.Event()
    stopped = anyio.Event()

    @tasks.task()
    async def endless() -> None:
        started.set()
        try:
            await anyio.sleep(60)
        finally:
            stopped.set()

    async with Worker(queue, tasks, lease=0.3, **FAST):
        job = await endless.enqueue(queue)
        await started.wait()
        await queue.cancel(job.id)
        with anyio.fail_after(30):
            await stopped.wait()
    assert (await queue.get_job(job.id)).status == JobStatus.CANCELLED


def short_task() -> tuple[Tasks, anyio.Event]:
    """Tasks with one, `short`, that takes 0.3 s, and the event it sets once it starts."""
    tasks = Tasks()
    started = anyio.Event()

    @tasks.task()
    async def short() -> str:
        started.set()
        await anyio.sleep(0.3)
        return "finished"

    return tasks, started


async def test_leaving_the_block_lets_running_jobs_finish(queue: Queue) -> None:
    """The running job holds the worker's one slot until the worker is stopping, so the job
    queued behind it could only be claimed after the stop, which claims nothing. (It was queued
    with a 0.1 s delay instead: a claim under way at the stop, slow under load, took it.)"""
    held = Held()
    worker = Worker(queue, held.tasks, concurrency=1, shutdown_timeout=10, **FAST)

    async def release_once_stopping() -> None:
        await eventually(lambda: worker._stopping, "the worker is stopping")
        held.release.set()

    async with anyio.create_task_group() as group, worker:
        job = await queue.enqueue("held")
        await held.started.wait()
        queued = await queue.enqueue("held")
        group.start_soon(release_once_stopping)
    assert (await queue.get_job(job.id)).status == JobStatus.COMPLETED
    assert (await queue.get_job(queued.id)).status == JobStatus.PENDING


async def test_shutdown_timeout_returns_unfinished_jobs(queue: Queue) -> None:
    tasks = Tasks()
    started = anyio.Event()
    runs = 0

    @tasks.task()
    async def stubborn() -> str:
        nonlocal runs
        runs += 1
        started.set()
        await anyio.sleep(0.5 if runs > 1 else 60)
        return "second time lucky"

    async with Worker(queue, tasks, shutdown_timeout=0.2, **FAST):
        job = await stubborn.enqueue(queue)
        await started.wait()
    returned = await queue.get_job(job.id)
    assert returned.status == JobStatus.PENDING and returned.attempts == 0
    async with Worker(queue, tasks, **FAST):
        assert await queue.result(job.id, timeout=10) == "second time lucky"


async def test_stop_from_code_lets_the_running_job_finish(queue: Queue) -> None:
    tasks, started = short_task()
    worker = Worker(queue, tasks, shutdown_timeout=10, **FAST)
    running = asyncio.create_task(worker.run())
    job = await queue.enqueue("short")
    await started.wait()
    worker.stop()
    await running
    assert (await queue.get_job(job.id)).status == JobStatus.COMPLETED


class StopsDuringTheFirstClaim(MemoryBackend):
    """A memory backend whose first claim stops the worker while it is under way, then stores
    another job, as a drain that comes while a claim is in flight and an enqueue after it."""

    worker: Worker
    stopped = False

    async def claim(self, *args: Any, **kwargs: Any) -> list[queuekit.Job]:
        claimed = await super().claim(*args, **kwargs)
        if not self.stopped:
            self.stopped = True
            self.worker.stop()
            await self.enqueue(queuekit.new_job("short"))
        return claimed


async def test_no_claim_starts_after_stop() -> None:
    """What a claim in flight took runs; nothing is claimed after `stop`, though the claim
    loop, having claimed, goes straight to its next claim while slots are free."""
    backend = StopsDuringTheFirstClaim()
    tasks, _ = short_task()
    async with queuekit.connect(backend) as queue:
        first = await queue.enqueue("short")
        backend.worker = Worker(queue, tasks, concurrency=5, shutdown_timeout=10, **FAST)
        await backend.worker.run()
        statuses = Counter(job.status for job in (await queue.list_jobs()).jobs)
    assert (await queue.get_job(first.id)).status == JobStatus.COMPLETED
    assert statuses == {JobStatus.COMPLETED: 1, JobStatus.PENDING: 1}
    assert backend.worker.processed == 1


class EmptyClaimOutlastsTheLastJob(MemoryBackend):
    """A memory backend whose claims that find nothing answer only once the worker has
    finished one more job: as a claim under way while the last running job ends, and releases
    a job waiting for it."""

    worker: Worker

    async def claim(self, *args: Any, **kwargs: Any) -> list[queuekit.Job]:
        processed = self.worker.processed
        claimed = await super().claim(*args, **kwargs)
        if not claimed and self.worker._in_flight:
            while self.worker.processed == processed:
                await self.worker._slot_event().wait()  # set as a job's end is counted
        return claimed


async def test_run_until_empty_runs_a_job_released_while_it_claimed() -> None:
    """A job released by the end of the last running one, while a claim that found nothing
    was under way, still runs before `run_until_empty` returns."""
    backend = EmptyClaimOutlastsTheLastJob()
    tasks, _ = short_task()
    async with queuekit.connect(backend) as queue:
        parent = await queue.enqueue("short")
        child = await queue.enqueue("short", after=[parent])
        backend.worker = Worker(queue, tasks, concurrency=2, **FAST)
        assert await backend.worker.run_until_empty() == 2
        assert (await queue.get_job(child.id)).status == JobStatus.COMPLETED


async def test_cancelling_the_task_of_run_is_a_hard_stop(queue: Queue) -> None:
    """`Task.cancel` on the task running `worker.run()` ends it at once (on Redis too, whose
    driver can swallow a cancel: see `RedisCalls`), writing nothing: the job stays running
    under its lease, to be rescued once that expires."""
    tasks = Tasks()
    started = anyio.Event()

    @tasks.task()
    async def endless() -> None:
        started.set()
        await anyio.sleep_forever()

    running = asyncio.create_task(Worker(queue, tasks, **FAST).run())
    job = await endless.enqueue(queue)
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (await queue.get_job(job.id)).status == JobStatus.RUNNING


class FlakyBackend(MemoryBackend):
    """A memory backend whose claims, heartbeats and first writes fail, like a server going away."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = {"claim": 3, "heartbeat": 1, "complete": 1}

    def _maybe_fail(self, call: str) -> None:
        if self.failures[call] > 0:
            self.failures[call] -= 1
            raise BackendUnavailableError(f"{call}: connection refused")

    async def claim(self, *args: Any, **kwargs: Any) -> list[queuekit.Job]:
        self._maybe_fail("claim")
        return await super().claim(*args, **kwargs)

    async def heartbeat(self, *args: Any, **kwargs: Any) -> set[queuekit.Attempt]:
        self._maybe_fail("heartbeat")
        return await super().heartbeat(*args, **kwargs)

    async def complete(self, *args: Any, **kwargs: Any) -> JobStatus | None:
        self._maybe_fail("complete")
        return await super().complete(*args, **kwargs)


async def test_worker_carries_on_through_backend_errors() -> None:
    backend = FlakyBackend()
    tasks = Tasks()

    @tasks.task()
    async def slowish(n: int) -> int:
        await anyio.sleep(0.6)  # over a heartbeat interval: one heartbeat fails meanwhile
        return n

    async with queuekit.connect(backend) as queue:
        jobs = await queue.enqueue_many(queuekit.new_job("slowish", {"n": n}) for n in range(5))
        async with Worker(queue, tasks, lease=1.5, poll_interval=0.05, rescue_interval=0.1):
            results = [await queue.result(job.id, timeout=20) for job in jobs]
    assert results == list(range(5))
    assert backend.failures == {"claim": 0, "heartbeat": 0, "complete": 0}
    # The completion that failed was written again while the lease held: no job ran twice.
    attempts = [(await queue.get_job(job.id)).attempts for job in jobs]
    assert attempts == [1, 1, 1, 1, 1]


def test_worker_can_be_built_outside_an_event_loop() -> None:
    worker = Worker(queuekit.connect("memory://"), Tasks(), queues={"a": 2, "b": 3})
    worker.stop()
    assert worker.limits == {"a": 2, "b": 3}

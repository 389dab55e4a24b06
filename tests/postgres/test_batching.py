"""Batched completion on PostgreSQL: many concurrent calls become few statements, each call
learns its own outcome, fencing holds inside a batch, and a worker's slot does not wait for
its outcome's write."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

import queuekit
from queuekit import Attempt, InvalidPayloadError, JobStatus, Tasks, Worker
from queuekit.backends.postgres import PostgresBackend

from ..waiting import eventually
from ..worker.options import FAST
from .conftest import OpenBackend


async def _claim(backend: PostgresBackend, count: int, lease: float = 30) -> list[queuekit.Job]:
    return await backend.claim({"default": count}, limit=count, lease=lease, worker_id="w")


async def test_many_concurrent_completions_take_few_statements(
    pg_backend: PostgresBackend,
) -> None:
    await pg_backend.enqueue_many([queuekit.new_job("t", {"n": n}) for n in range(300)])
    jobs = await _claim(pg_backend, 300)
    before = pg_backend.finish_batches
    done = await asyncio.gather(
        *(pg_backend.complete(job.attempt, f'{{"n": {job.payload["n"]}}}') for job in jobs)
    )
    assert all(done)
    assert pg_backend.finish_batches - before <= 3
    stats = await pg_backend.stats("default")
    assert stats.completed == 300 and stats.running == 0
    stored = await pg_backend.get_job(jobs[123].id)
    assert stored is not None and stored.result == {"n": jobs[123].payload["n"]}


async def test_a_stale_attempt_in_a_batch_is_not_written(pg_backend: PostgresBackend) -> None:
    await pg_backend.enqueue_many([queuekit.new_job("t", max_attempts=3) for _ in range(4)])
    (first,) = await _claim(pg_backend, 1, lease=0.2)
    others = await _claim(pg_backend, 3)
    await asyncio.sleep(0.3)
    assert (await pg_backend.rescue()).total == 1
    current = (await _claim(pg_backend, 1))[0]
    assert current.id == first.id and current.attempts == 2
    before = pg_backend.finish_batches
    results = await asyncio.gather(
        pg_backend.complete(first.attempt, '"stale"'),
        pg_backend.fail(others[0].attempt, "boom", retry_in=60),
        pg_backend.snooze(others[1].attempt, 60),
        pg_backend.complete(others[2].attempt, '"fine"'),
        pg_backend.fail(Attempt("no-such-job", 1, "no-token"), "x", retry_in=None),
    )
    assert pg_backend.finish_batches - before == 1
    assert list(results) == [None, JobStatus.FAILED, JobStatus.PENDING, JobStatus.COMPLETED, None]
    job = await pg_backend.get_job(first.id)
    assert job is not None
    assert (job.status, job.attempts, job.result) == (JobStatus.RUNNING, 2, None)
    assert await pg_backend.complete(current.attempt, '"current"')
    job = await pg_backend.get_job(first.id)
    assert job is not None and job.result == "current"
    snoozed = await pg_backend.get_job(others[1].id)
    assert snoozed is not None and (snoozed.status, snoozed.attempts) == (JobStatus.PENDING, 0)


async def test_the_same_attempt_twice_succeeds_once(pg_backend: PostgresBackend) -> None:
    await pg_backend.enqueue(queuekit.new_job("t"))
    job = (await _claim(pg_backend, 1))[0]
    results = await asyncio.gather(*(pg_backend.complete(job.attempt) for _ in range(3)))
    assert results.count(JobStatus.COMPLETED) == 1 and results.count(None) == 2


async def test_a_bad_result_fails_only_its_own_call(pg_backend: PostgresBackend) -> None:
    await pg_backend.enqueue_many([queuekit.new_job("t") for _ in range(3)])
    jobs = await _claim(pg_backend, 3)
    results = await asyncio.gather(
        pg_backend.complete(jobs[0].attempt, '"ok"'),
        pg_backend.complete(jobs[1].attempt, "{not json"),
        pg_backend.complete(jobs[2].attempt, '"ok"'),
        return_exceptions=True,
    )
    assert results[0] == results[2] == JobStatus.COMPLETED
    assert isinstance(results[1], InvalidPayloadError)
    still = await pg_backend.get_job(jobs[1].id)
    assert still is not None and still.status == JobStatus.RUNNING


async def test_close_flushes_buffered_completions(open_backend: OpenBackend) -> None:
    backend = await open_backend(batch_window="5")
    await backend.enqueue(queuekit.new_job("t"))
    job = (await _claim(backend, 1))[0]
    completing = asyncio.create_task(backend.complete(job.attempt, '"flushed"'))
    await asyncio.sleep(0.05)
    assert not completing.done()  # still inside the batch window
    await backend.close()
    assert await completing
    other = await open_backend()
    stored = await other.get_job(job.id)
    assert stored is not None and stored.result == "flushed"
    with pytest.raises(queuekit.BackendUnavailableError):
        await backend.complete(job.attempt)


async def test_a_slot_frees_when_its_handler_returns_not_when_its_outcome_is_written(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    """With one slot, and the first job's outcome held up (its row locked by another
    transaction), the worker runs the second job meanwhile. The third waits: one slot lets at
    most one outcome wait for its write, and there are two. All three complete once the row is
    free, each once."""
    queue = queuekit.Queue(pg_backend)
    tasks = Tasks()
    ran: list[int] = []
    locker = await asyncpg.connect(dsn)
    holding = locker.transaction()

    @tasks.task()
    async def step(n: int) -> int:
        if n == 1:
            await holding.start()
            job_id = queuekit.current_job().job.id
            await locker.execute(
                f"SELECT FROM {pg_backend.qualified_table} WHERE id = $1 FOR UPDATE", job_id
            )
        ran.append(n)
        return n

    jobs = await queue.enqueue_many([queuekit.new_job("step", {"n": n}) for n in (1, 2, 3)])
    async with Worker(queue, tasks, concurrency=1, **FAST) as worker:
        try:  # the lock goes before the worker stops, which waits for the write it holds up
            await eventually(
                lambda: ran == [1, 2], "the second job ran while the first's write waited"
            )
            await eventually(
                lambda: sum(running.recording for running in worker._in_flight.values()) == 2,
                "both outcomes waiting for their write",
            )
            assert worker._free_slots() == ({}, 0)
            third = await queue.get_job(jobs[2].id)
            assert third is not None and third.status == JobStatus.PENDING
        finally:
            await locker.close()
        for job in jobs:
            assert await queue.result(job.id, timeout=60) == job.payload["n"]
    assert ran == [1, 2, 3]

"""Conformance: run now, of one job and by filter: a job waiting to run becomes due now."""

from __future__ import annotations

import time
from datetime import timedelta

import anyio
import pytest

import queuekit
from queuekit import Backend, InvalidOptionError, JobNotFoundError, JobStatus, Limits, Queue
from queuekit.job import Job

from ..waiting import DEADLINE
from .helpers import claim, claim_one

HOUR = 3600.0


async def _retry_waiting(queue: Queue, backend: Backend, **options: object) -> Job:
    """A job that failed once and waits an hour for its retry."""
    job = await queue.enqueue("t", **options)  # type: ignore[arg-type]
    running = await claim_one(backend, queue=job.queue)
    assert await backend.fail(running.attempt, "boom", retry_in=HOUR) == JobStatus.FAILED
    return await queue.get_job(job.id)


async def test_a_scheduled_job_becomes_due_now(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", delay=HOUR)
    assert await claim(backend) == []
    made_due = await queue.run_now(job.id)
    assert made_due.status == JobStatus.PENDING and made_due.attempts == 0
    assert job.created_at <= made_due.scheduled_at < job.scheduled_at
    claimed = await claim_one(backend)
    assert claimed.id == job.id and claimed.attempts == 1


async def test_a_retry_waiting_job_runs_now_keeping_its_attempts(
    queue: Queue, backend: Backend
) -> None:
    failed = await _retry_waiting(queue, backend)
    assert failed.attempts == 1 and await claim(backend) == []
    made_due = await queue.run_now(failed.id)
    assert made_due.status == JobStatus.FAILED and made_due.attempts == 1
    assert made_due.scheduled_at < failed.scheduled_at
    assert made_due.last_error == "boom"
    claimed = await claim_one(backend)
    assert claimed.id == failed.id and claimed.attempts == 2


async def test_jobs_not_waiting_to_run_are_left_as_they_are(queue: Queue, backend: Backend) -> None:
    due = await queue.enqueue("t")
    assert await queue.run_now(due.id) == await queue.get_job(due.id)
    assert (await queue.get_job(due.id)).scheduled_at == due.scheduled_at
    running = await claim_one(backend)
    assert (await queue.run_now(running.id)).status == JobStatus.RUNNING
    assert await backend.complete(running.attempt) == JobStatus.COMPLETED  # still its lease
    assert (await queue.run_now(running.id)).status == JobStatus.COMPLETED
    cancelled = await queue.enqueue("t", delay=HOUR)
    await queue.cancel(cancelled.id)
    assert (await queue.run_now(cancelled.id)).status == JobStatus.CANCELLED
    dead = await queue.enqueue("t", max_attempts=1)
    assert await backend.fail((await claim_one(backend)).attempt, "x", retry_in=None)
    assert (await queue.run_now(dead.id)).status == JobStatus.DEAD
    assert await claim(backend) == []


async def test_an_unknown_job(queue: Queue, backend: Backend) -> None:
    assert await backend.run_now("no-such-job") is None
    with pytest.raises(JobNotFoundError):
        await queue.run_now("no-such-job")
    with pytest.raises(JobNotFoundError):
        await queue.run_now("not a job id")


async def test_run_now_all_by_filter_in_batches(
    queue: Queue, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three jobs per batch (this test's own patch: a PgBouncer copy of it runs too), so a
    # handful of jobs takes several batches.
    monkeypatch.setattr(queuekit.queue, "BULK_BATCH_SIZE", 3)
    delayed = await queue.enqueue_many(queuekit.new_job("t", delay=HOUR) for _ in range(7))
    other_type = await queue.enqueue("u", delay=HOUR)
    other_queue = await queue.enqueue("t", queue="other", delay=HOUR)
    failed = [await _retry_waiting(queue, backend) for _ in range(2)]
    due = await queue.enqueue("t")
    progress: list[int] = []
    assert (
        await queue.run_now_all(
            queue="default", type="t", status="pending", on_progress=progress.append
        )
        == 7
    )
    assert progress == sorted(progress) and progress[-1] == 7 and len(progress) >= 3
    assert (await queue.get_job(due.id)).scheduled_at == due.scheduled_at
    for job in (other_type, other_queue, *failed):
        assert (await queue.get_job(job.id)).scheduled_at > job.created_at + timedelta(minutes=1)
    assert await queue.run_now_all(queue="default", status=JobStatus.FAILED) == 2
    assert await queue.run_now_all(queue="default") == 1  # other_type
    assert await queue.run_now_all() == 1  # other_queue
    assert await queue.run_now_all() == 0
    claimed = await claim(backend, 20) + await claim(backend, 20, queue="other")
    assert {job.id for job in claimed} == {
        job.id for job in (*delayed, other_type, other_queue, *failed, due)
    }


async def test_run_now_all_refuses_other_statuses(queue: Queue) -> None:
    with pytest.raises(InvalidOptionError):
        await queue.run_now_all(status="dead")
    with pytest.raises(InvalidOptionError):
        await queue.run_now_all(status="nonsense")


async def _wakes_an_idle_waiter(queue: Queue, backend: Backend, make_due: object) -> None:
    """An idle `wait_for_work` returns once a job is made due (it would otherwise wait the
    hour until the job was due, or out its timeout)."""
    waiting = anyio.Event()
    woke_after: list[float] = []

    async def waiter() -> None:
        started = time.monotonic()
        waiting.set()
        await backend.wait_for_work(["default"], timeout=DEADLINE)
        woke_after.append(time.monotonic() - started)

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await waiting.wait()
        await anyio.sleep(0.1)  # into its wait, as test_wait_for_work_wakes_on_enqueue does
        await make_due()  # type: ignore[operator]
    assert woke_after and woke_after[0] < DEADLINE / 2


async def test_run_now_wakes_idle_workers(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", delay=HOUR)
    await _wakes_an_idle_waiter(queue, backend, lambda: queue.run_now(job.id))


async def test_run_now_all_wakes_idle_workers(queue: Queue, backend: Backend) -> None:
    await _retry_waiting(queue, backend)
    await _wakes_an_idle_waiter(queue, backend, lambda: queue.run_now_all(status="failed"))


async def test_run_now_wakes_idle_workers_of_a_limited_queue(
    queue: Queue, backend: Backend
) -> None:
    await queue.set_limits("default", Limits(concurrency=2))
    job = await queue.enqueue("t", delay=HOUR, limit_key="k")
    await _wakes_an_idle_waiter(queue, backend, lambda: queue.run_now(job.id))


async def test_a_limited_queue_still_obeys_its_limits(queue: Queue, backend: Backend) -> None:
    await queue.set_limits("default", Limits(concurrency=2, per_key=1))
    keyed = [await queue.enqueue("t", delay=HOUR, limit_key="a") for _ in range(2)]
    keyless = await queue.enqueue("t", delay=HOUR)
    retrying = await _retry_waiting(queue, backend, limit_key="b")
    assert await claim(backend, 10) == []
    assert await queue.run_now_all() == 4
    first = await claim(backend, 10)
    assert len(first) == 2 and await claim(backend, 10) == []
    usage = await queue.limit_usage("default")
    assert usage.running == 2
    seen = [job.id for job in first]
    while len(seen) < 4:
        for job in first:
            assert await backend.complete(job.attempt) == JobStatus.COMPLETED
        first = await claim(backend, 10)
        assert 1 <= len(first) <= 2
        assert len({job.limit_key for job in first if job.limit_key}) == len(
            [job for job in first if job.limit_key]
        )  # per_key=1: never two of one key at once
        seen += [job.id for job in first]
    assert sorted(seen) == sorted(job.id for job in (*keyed, keyless, retrying))
    assert await claim(backend, 10) == []

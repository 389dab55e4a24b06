"""Conformance: per-job expiry (`expires_at`, `expires_in`), in claims, the sweep and waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

import queuekit
from queuekit import Backend, Job, JobStatus, Limits, Queue
from queuekit.backend import EXPIRE_BATCH, EXPIRED
from queuekit.errors import InvalidOptionError

from ..waiting import eventually
from .helpers import claim, claim_one

HOUR = timedelta(hours=1)


def past() -> datetime:
    """An expiry long gone by any backend's clock."""
    return datetime.now(UTC) - HOUR


def future() -> datetime:
    """An expiry no test run reaches."""
    return datetime.now(UTC) + 100 * HOUR


async def assert_expired(backend: Backend, job_id: str) -> Job:
    job = await backend.get_job(job_id)
    assert job is not None
    assert job.status == JobStatus.CANCELLED and job.last_error == EXPIRED, job
    assert job.finished_at is not None and job.started_at is None and job.attempts == 0
    return job


async def test_expired_job_is_never_claimed_and_ends_cancelled(
    queue: Queue, backend: Backend
) -> None:
    expires_at = past()
    job = await queue.enqueue("t", expires_at=expires_at)
    assert job.expires_at == expires_at and job.status == JobStatus.PENDING
    assert (await backend.get_job(job.id)) == job
    assert await claim(backend) == []
    # Counted once, whether the claim (memory, Redis) or the sweep expired it.
    assert await backend.expire() == 1
    await assert_expired(backend, job.id)
    assert await claim(backend) == []
    assert await backend.expire() == 0


async def test_claims_take_the_live_jobs_past_expired_ones(queue: Queue, backend: Backend) -> None:
    expired = [await queue.enqueue("t", expires_at=past(), priority=20) for _ in range(3)]
    live = await queue.enqueue("t", expires_at=future())
    plain = await queue.enqueue("t")
    claimed = await claim(backend, 5)
    assert [job.id for job in claimed] == [live.id, plain.id]
    await backend.expire()
    for job in expired:
        await assert_expired(backend, job.id)


async def test_unexpired_job_is_claimed_and_kept_by_the_sweep(
    queue: Queue, backend: Backend
) -> None:
    job = await queue.enqueue("t", expires_in=timedelta(hours=1))
    assert job.expires_at is not None
    # The backend computed the expiry from its own clock, in the write itself.
    assert abs((job.expires_at - job.created_at) - HOUR) < timedelta(milliseconds=1)
    assert await backend.expire() == 0
    running = await claim_one(backend)
    assert running.id == job.id and running.expires_at == job.expires_at
    assert await backend.expire() == 0
    assert await backend.complete(running.attempt) == JobStatus.COMPLETED


async def test_job_due_after_its_expiry_expires_unstarted(queue: Queue, backend: Backend) -> None:
    delayed = await queue.enqueue("t", delay=3600, expires_at=past())
    overdue = await queue.enqueue("t", run_at=past() - HOUR, expires_at=past())
    assert await claim(backend, 2) == []
    await backend.expire()  # what a claim did not expire already
    await assert_expired(backend, delayed.id)
    await assert_expired(backend, overdue.id)


async def test_sweep_goes_in_bounded_batches(queue: Queue, backend: Backend) -> None:
    count = 2 * EXPIRE_BATCH + 3
    await queue.enqueue_many(queuekit.new_job("t", n, expires_at=past()) for n in range(count))
    live = await queue.enqueue("t", expires_at=future())
    assert await backend.expire() == count
    assert await backend.expire() == 0
    page = await backend.list_jobs(status=JobStatus.CANCELLED, limit=count + 1)
    assert len(page.jobs) == count and {job.last_error for job in page.jobs} == {EXPIRED}
    assert (await claim_one(backend)).id == live.id


async def test_outcome_waiters_wake_for_expired_jobs(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", delay=3600, expires_at=past())
    outcome: list[Job | None] = []

    async def wait() -> None:
        outcome.append(await backend.wait_for_outcome(job.id, 30))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(wait)
        # Let the waiter start first; the outcome is the same if it comes after the sweep.
        await anyio.sleep(0.1)
        assert await backend.expire() == 1
    (woken,) = outcome
    assert woken is not None and woken.status == JobStatus.CANCELLED
    assert woken.last_error == EXPIRED


@pytest.mark.parametrize(
    "limits",
    [Limits(concurrency=2), Limits(per_key=1), Limits(ordered=True), Limits(rate=100)],
    ids=["concurrency", "per_key", "ordered", "rate"],
)
async def test_limited_queues_never_start_expired_jobs(
    queue: Queue, backend: Backend, limits: Limits
) -> None:
    await queue.set_limits("lim", limits)
    expired = [
        await queue.enqueue("t", queue="lim", limit_key=key, expires_at=past())
        for key in ("a", "b", None)
    ]
    live_a = await queue.enqueue("t", queue="lim", limit_key="a")
    live_c = await queue.enqueue("t", queue="lim", limit_key="c", expires_at=future())
    claimed: list[Job] = []

    async def drained() -> bool:
        await backend.expire()
        claimed.extend(await claim(backend, 2, queue="lim"))
        assert not {job.id for job in claimed} & {job.id for job in expired}
        for job in claimed:
            if job.status == JobStatus.RUNNING:
                await backend.complete(job.attempt)
        return {job.id for job in claimed} == {live_a.id, live_c.id}

    await eventually(drained, "the live jobs of the limited queue were claimed")
    for job in expired:
        await assert_expired(backend, job.id)
    # The keys' bookkeeping stayed consistent: new jobs of the same keys run.
    again = [await queue.enqueue("t", queue="lim", limit_key=key) for key in ("a", "b", None)]
    more: list[Job] = []

    async def all_claimed() -> bool:
        for job in await claim(backend, 3, queue="lim"):
            more.append(job)
            await backend.complete(job.attempt)
        return len(more) == len(again)

    await eventually(all_claimed, "new jobs of the expired jobs' keys were claimed")
    assert {job.id for job in more} == {job.id for job in again}
    assert (await backend.limit_usage("lim")).running == 0


async def test_replay_of_an_expired_job_runs_it(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", expires_at=past())
    await backend.expire()
    await assert_expired(backend, job.id)
    replayed = await queue.replay(job.id)
    assert replayed.status == JobStatus.PENDING and replayed.expires_at is None
    assert (await claim_one(backend)).id == job.id


async def test_retry_waiting_jobs_do_not_expire(queue: Queue, backend: Backend) -> None:
    """Expiry is about a job's first start: once started, a retry or a snooze keeps it."""
    seconds = 0.5
    while True:
        job = await queue.enqueue("t", expires_in=seconds, max_attempts=3)
        claimed = await claim(backend)
        if claimed:
            break
        # This machine was too slow to claim before the expiry: sweep it, try a longer one.
        await backend.expire()
        await assert_expired(backend, job.id)
        seconds *= 4
    (running,) = claimed
    assert await backend.fail(running.attempt, "boom", retry_in=0) == JobStatus.FAILED
    assert job.expires_at is not None
    expiry = job.expires_at

    async def passed() -> bool:
        probe = await queue.enqueue("probe", queue="clock")
        return probe.created_at > expiry

    await eventually(passed, "the backend's clock passed the expiry")
    assert await backend.expire() == 0
    again = await claim_one(backend)
    assert again.id == job.id and again.attempts == 2


BAD: list[tuple[dict[str, Any], str]] = [
    ({"expires_at": datetime(2030, 1, 1)}, "timezone-aware"),
    ({"expires_at": "2030-01-01T00:00:00Z"}, "timezone-aware"),
    ({"expires_in": -1}, "expires_in"),
    ({"expires_in": 0}, "expires_in"),
    ({"expires_in": float("nan")}, "expires_in"),
    ({"expires_in": True}, "expires_in"),
    ({"expires_in": 10, "expires_at": datetime(2030, 1, 1, tzinfo=UTC)}, "not both"),
    ({"delay": 60, "expires_in": 60}, "not after the delay"),
    ({"delay": 60, "expires_in": timedelta(seconds=30)}, "not after the delay"),
    (
        {
            "run_at": datetime(2030, 1, 1, tzinfo=UTC),
            "expires_at": datetime(2030, 1, 1, tzinfo=UTC),
        },
        "not after run_at",
    ),
    ({"expires_at": datetime(2300, 1, 1, tzinfo=UTC)}, "100 years"),
]


@pytest.mark.parametrize(("options", "message"), BAD)
async def test_bad_expiry_is_refused_and_nothing_stored(
    queue: Queue, backend: Backend, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        await queue.enqueue("t", **options)
    with pytest.raises(InvalidOptionError, match=message):
        await queue.enqueue_many([queuekit.new_job("t", **options)])
    assert (await backend.list_jobs()).jobs == []

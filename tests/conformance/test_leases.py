"""Conformance: completion, retries, fencing of stale attempts, heartbeats and the rescuer."""

from __future__ import annotations

from datetime import timedelta

import anyio

from queuekit import Attempt, Backend, JobStatus, Queue
from queuekit.backend import Rescued

from .helpers import claim, claim_one, claim_when_due


async def test_complete_stores_the_result(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    running = await claim_one(backend)
    assert await backend.complete(running.attempt, '{"sent": 3}')
    done = await queue.get_job(job.id)
    assert done.status == JobStatus.COMPLETED and done.result == {"sent": 3}
    assert done.finished_at is not None and done.lease_expires_at is None
    assert await queue.result(job.id) == {"sent": 3}


async def test_fail_with_attempts_left_retries_later(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=2)
    running = await claim_one(backend)
    assert await backend.fail(running.attempt, "ValueError: boom", retry_in=0.3) == JobStatus.FAILED
    failed = await queue.get_job(job.id)
    assert failed.status == JobStatus.FAILED and failed.last_error == "ValueError: boom"
    assert failed.attempts == 1 and failed.lease_expires_at is None
    assert failed.scheduled_at >= running.started_at + timedelta(seconds=0.29)  # type: ignore[operator]
    second = await claim_when_due(backend)
    assert second.id == job.id and second.attempts == 2
    assert await backend.fail(second.attempt, "ValueError: again", retry_in=None) == JobStatus.DEAD
    dead = await queue.get_job(job.id)
    assert dead.status == JobStatus.DEAD and dead.finished_at is not None
    assert dead.last_error == "ValueError: again"


async def test_fail_without_retry_goes_straight_to_dead(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=5)
    running = await claim_one(backend)
    assert await backend.fail(running.attempt, "discarded", retry_in=None) == JobStatus.DEAD
    assert (await queue.get_job(job.id)).status == JobStatus.DEAD


async def test_snooze_does_not_count_an_attempt(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=1)
    for _ in range(3):
        running = await claim_one(backend)
        assert running.attempts == 1
        assert await backend.snooze(running.attempt, 0.0)
    snoozed = await queue.get_job(job.id)
    assert snoozed.status == JobStatus.PENDING and snoozed.attempts == 0
    running = await claim_one(backend)
    assert await backend.snooze(running.attempt, 60.0)
    assert await claim(backend) == []


async def test_stale_attempt_changes_nothing(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=3)
    first = await claim_one(backend, lease=0.2)
    await anyio.sleep(0.3)
    assert (await backend.rescue()).total == 1
    second = await claim_one(backend, lease=30)
    assert second.attempts == 2
    stale = first.attempt
    assert not await backend.complete(stale, '"late"')
    assert await backend.fail(stale, "late failure", retry_in=0.0) is None
    assert not await backend.snooze(stale, 0.0)
    assert await backend.heartbeat([stale, second.attempt], lease=30) == {stale}
    current = await queue.get_job(job.id)
    assert current.status == JobStatus.RUNNING and current.attempts == 2
    assert current.result is None and current.last_error == "lease expired"
    assert await backend.complete(second.attempt, '"on time"')
    assert (await queue.get_job(job.id)).result == "on time"


async def test_unknown_attempts_are_reported_lost(backend: Backend) -> None:
    ghost = Attempt("no-such-job", 1, "no-token")
    assert await backend.heartbeat([ghost], lease=30) == {ghost}
    assert not await backend.complete(ghost)
    assert await backend.fail(ghost, "x", retry_in=1.0) is None


async def test_heartbeat_keeps_the_lease(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    # Heartbeats well inside the lease keep it past its first expiry (a busy machine may
    # take a good part of a second between two of them).
    running = await claim_one(backend, lease=1.0)
    for _ in range(5):
        await anyio.sleep(0.25)
        assert await backend.heartbeat([running.attempt], lease=1.0) == set()
        assert (await backend.rescue()).total == 0
    renewed = await queue.get_job(job.id)
    assert renewed.lease_expires_at is not None and running.lease_expires_at is not None
    assert renewed.lease_expires_at > running.lease_expires_at
    assert await backend.complete(running.attempt)


async def test_rescue_fails_expired_leases_then_kills(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=2)
    await claim_one(backend, lease=0.1)
    early = await backend.rescue()
    assert early.total == 0 or (await queue.get_job(job.id)).status != JobStatus.RUNNING
    await anyio.sleep(0.2)
    assert await backend.rescue() == Rescued(failed=1, dead=0)
    rescued = await queue.get_job(job.id)
    assert rescued.status == JobStatus.FAILED and rescued.last_error == "lease expired"
    assert (await backend.rescue()).total == 0
    await claim_one(backend, lease=0.1)
    await anyio.sleep(0.2)
    assert await backend.rescue() == Rescued(failed=0, dead=1)
    dead = await queue.get_job(job.id)
    assert dead.status == JobStatus.DEAD and dead.attempts == 2
    assert dead.last_error == "lease expired"


async def test_cancel_running_job_loses_its_lease(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    running = await claim_one(backend)
    cancelled = await queue.cancel(job.id)
    assert cancelled.status == JobStatus.CANCELLED and cancelled.finished_at is not None
    assert await backend.heartbeat([running.attempt], lease=30) == {running.attempt}
    assert not await backend.complete(running.attempt)
    assert (await queue.get_job(job.id)).status == JobStatus.CANCELLED

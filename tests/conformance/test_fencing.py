"""Conformance: a claim's lease token fences a late worker after a replay or a re-enqueue.

In each case the stale attempt and the new one have the same attempt number (replay resets
it; a re-created job starts again), so only the token tells them apart.
"""

from __future__ import annotations

import anyio

from queuekit import Attempt, Backend, Job, JobStatus, Queue

from .helpers import WORKER, claim, claim_one


async def reclaim_past(queue: Queue, backend: Backend, stale: Attempt) -> Job:
    """Claim the job again, check every call of `stale` is refused and changes nothing, and
    return the new claim."""
    new = await claim_one(backend)
    assert new.id == stale.job_id and new.attempts == stale.number == 1
    assert new.attempt != stale and new.attempt.token != stale.token
    before = await queue.get_job(new.id)
    assert await backend.heartbeat([stale], lease=30) == {stale}
    assert not await backend.complete(stale, '"stale"')
    assert await backend.fail(stale, "stale failure", retry_in=0.0) is None
    assert await backend.fail(stale, "stale failure", retry_in=None) is None
    assert not await backend.snooze(stale, 0.0)
    assert await queue.get_job(new.id) == before
    assert await backend.heartbeat([stale, new.attempt], lease=30) == {stale}
    return new


async def rescue_until_done(backend: Backend) -> None:
    """Run the rescuer until it has taken the one running job whose lease is short."""
    with anyio.fail_after(10):
        while (await backend.rescue()).total == 0:
            await anyio.sleep(0.02)


async def test_cancel_then_replay_fences_the_cancelled_attempt(
    queue: Queue, backend: Backend
) -> None:
    job = await queue.enqueue("t", max_attempts=3)
    stale = (await claim_one(backend)).attempt
    await queue.cancel(job.id)
    assert (await queue.replay(job.id)).status == JobStatus.PENDING
    new = await reclaim_past(queue, backend, stale)
    assert await backend.complete(new.attempt, '"new"')
    assert not await backend.complete(stale, '"stale"')
    done = await queue.get_job(job.id)
    assert done.status == JobStatus.COMPLETED and done.result == "new"


async def test_dead_from_an_expired_lease_then_replay_fences_the_old_attempt(
    queue: Queue, backend: Backend
) -> None:
    job = await queue.enqueue("t", max_attempts=1)
    stale = (await claim_one(backend, lease=0.05)).attempt
    await rescue_until_done(backend)
    assert (await queue.get_job(job.id)).status == JobStatus.DEAD
    await queue.replay(job.id)
    new = await reclaim_past(queue, backend, stale)
    # A snooze ends the new claim too: the claim after it fences both earlier ones.
    assert await backend.snooze(new.attempt, 0.0)
    newer = await claim_one(backend)
    assert newer.attempts == 1 and newer.attempt.token not in (stale.token, new.attempt.token)
    assert await backend.heartbeat([stale, new.attempt, newer.attempt], lease=30) == {
        stale,
        new.attempt,
    }
    assert await backend.fail(new.attempt, "snoozed already", retry_in=None) is None
    assert await backend.fail(newer.attempt, "ValueError: real", retry_in=None) == JobStatus.DEAD
    dead = await queue.get_job(job.id)
    assert dead.status == JobStatus.DEAD and dead.last_error == "ValueError: real"


async def test_delete_then_reenqueue_with_the_same_id_fences_the_old_attempt(
    queue: Queue, backend: Backend
) -> None:
    job = await queue.enqueue("t", id="same-id", max_attempts=2)
    stale = (await claim_one(backend)).attempt
    await queue.cancel(job.id)
    assert await queue.delete_job(job.id)
    again = await queue.enqueue("t", {"v": 2}, id="same-id", max_attempts=2)
    assert again.attempts == 0 and again.payload == {"v": 2}
    new = await reclaim_past(queue, backend, stale)
    assert new.payload == {"v": 2}
    assert await backend.fail(new.attempt, "ValueError: once", retry_in=0.0) == JobStatus.FAILED
    assert not await backend.complete(new.attempt, '"late"')
    last = await claim_one(backend)
    assert last.attempts == 2
    assert await backend.complete(last.attempt, '"second"')
    done = await queue.get_job(job.id)
    assert done.status == JobStatus.COMPLETED and done.result == "second"
    assert done.last_error == "ValueError: once"


async def test_finished_jobs_keep_their_worker_until_replayed(
    queue: Queue, backend: Backend
) -> None:
    completed, dead, cancelled, expired = [
        await queue.enqueue("t", {"n": n}, max_attempts=1) for n in range(4)
    ]
    by_id = {job.id: job for job in await claim(backend, 3)}
    assert await backend.complete(by_id[completed.id].attempt)
    assert await backend.fail(by_id[dead.id].attempt, "boom", retry_in=None) == JobStatus.DEAD
    await queue.cancel(cancelled.id)
    await claim_one(backend, lease=0.05)
    await rescue_until_done(backend)
    for job in (completed, dead, cancelled, expired):
        finished = await queue.get_job(job.id)
        assert finished.status.is_terminal and finished.worker_id == WORKER, finished
        assert finished.lease_expires_at is None
    replayed = await queue.replay(dead.id)
    assert replayed.worker_id is None and replayed.started_at is None
    never_ran = await queue.enqueue("t")
    await queue.cancel(never_ran.id)
    assert (await queue.get_job(never_ran.id)).worker_id is None

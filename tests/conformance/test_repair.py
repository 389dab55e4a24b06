"""Conformance: cancel, replay, delete, purge and prune."""

from __future__ import annotations

import anyio
import pytest

import queuekit
from queuekit import Backend, JobFailedError, JobNotFoundError, JobRunningError, JobStatus, Queue

from .helpers import claim, claim_one


async def _dead_job(queue: Queue, backend: Backend, **options: object) -> queuekit.Job:
    job = await queue.enqueue("t", max_attempts=1, **options)  # type: ignore[arg-type]
    running = await claim_one(backend)
    assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
    return job


async def test_cancel_pending_job(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    assert (await queue.cancel(job.id)).status == JobStatus.CANCELLED
    assert await claim(backend) == []
    with pytest.raises(JobFailedError) as raised:
        await queue.result(job.id, timeout=1)
    assert raised.value.job.status == JobStatus.CANCELLED


async def test_cancel_leaves_finished_jobs_alone(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    assert await backend.complete((await claim_one(backend)).attempt)
    assert (await queue.cancel(job.id)).status == JobStatus.COMPLETED


async def test_replay_dead_job_resets_attempts(queue: Queue, backend: Backend) -> None:
    job = await _dead_job(queue, backend)
    replayed = await queue.replay(job.id)
    assert replayed.id == job.id
    assert replayed.status == JobStatus.PENDING and replayed.attempts == 0
    assert replayed.finished_at is None
    again = await claim_one(backend)
    assert again.id == job.id and again.attempts == 1


async def test_replay_is_idempotent_and_never_touches_live_jobs(
    queue: Queue, backend: Backend
) -> None:
    dead = await _dead_job(queue, backend)
    await queue.replay(dead.id)
    await queue.replay(dead.id)
    assert len(await claim(backend, 10)) == 1
    running = await queue.get_job(dead.id)
    assert (await queue.replay(dead.id)) == running
    pending = await queue.enqueue("t")
    assert (await queue.replay(pending.id)).status == JobStatus.PENDING
    assert await backend.complete(running.attempt)
    assert (await queue.replay(dead.id)).status == JobStatus.COMPLETED


async def test_replay_cancelled_job(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    await queue.cancel(job.id)
    assert (await queue.replay(job.id)).status == JobStatus.PENDING


async def test_replay_respects_a_newer_unique_job(queue: Queue, backend: Backend) -> None:
    dead = await _dead_job(queue, backend, unique_key="k")
    newer = await queue.enqueue("t", unique_key="k")
    assert newer.id != dead.id
    assert (await queue.replay(dead.id)).status == JobStatus.DEAD
    await queue.cancel(newer.id)
    assert (await queue.replay(dead.id)).status == JobStatus.PENDING
    assert (await queue.enqueue("t", unique_key="k")).id == dead.id


async def test_unknown_ids_raise_not_found(queue: Queue) -> None:
    for call in (queue.get_job, queue.cancel, queue.replay, queue.result):
        with pytest.raises(JobNotFoundError):
            await call("missing")
    assert not await queue.delete_job("missing")


async def test_delete_job_but_never_a_running_one(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    running_job = await queue.enqueue("r", queue="busy")
    await claim_one(backend, queue="busy")
    assert await queue.delete_job(job.id)
    assert await backend.get_job(job.id) is None
    with pytest.raises(JobRunningError):
        await queue.delete_job(running_job.id)
    assert (await queue.get_job(running_job.id)).status == JobStatus.RUNNING


async def test_purge_deletes_one_status_of_one_queue(queue: Queue, backend: Backend) -> None:
    await queue.enqueue_many(queuekit.new_job("t", queue="a") for _ in range(3))
    await queue.enqueue_many(queuekit.new_job("t", queue="b") for _ in range(2))
    await _dead_job(queue, backend)
    assert await queue.purge("a", JobStatus.PENDING) == 3
    assert await queue.purge("a", JobStatus.PENDING) == 0
    assert (await queue.stats("b")).pending == 2
    assert await queue.purge("default", "dead") == 1
    with pytest.raises(queuekit.InvalidOptionError):
        await queue.purge("a", JobStatus.RUNNING)


async def test_prune_deletes_old_finished_jobs(queue: Queue, backend: Backend) -> None:
    dead = await _dead_job(queue, backend)
    live = await queue.enqueue("t")
    assert await queue.prune(older_than=60) == 0
    await anyio.sleep(0.2)
    assert await queue.prune(older_than=0.1, statuses=[JobStatus.COMPLETED]) == 0
    assert await queue.prune(older_than=0.1) == 1
    assert await backend.get_job(dead.id) is None
    assert await backend.get_job(live.id) is not None
    with pytest.raises(queuekit.InvalidOptionError):
        await queue.prune(older_than=0, statuses=[JobStatus.PENDING])

"""Conformance: listing by task type, and replay, cancel and delete by filter in batches."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import queuekit
from queuekit import Backend, InvalidNameError, InvalidOptionError, JobStatus, Queue
from queuekit.job import Job

from ..waiting import eventually
from .helpers import claim, claim_one


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three jobs per batch, so a handful of jobs takes several batches."""
    monkeypatch.setattr(queuekit.queue, "BULK_BATCH_SIZE", 3)


async def _dead(
    handle: Queue,
    backend: Backend,
    count: int,
    *,
    queue: str = "default",
    type: str = "t",
    unique_key: str | None = None,
) -> list[Job]:
    jobs = await handle.enqueue_many(
        queuekit.new_job(type, queue=queue, max_attempts=1, unique_key=unique_key)
        for _ in range(count)
    )
    for running in await claim(backend, count, queue=queue):
        assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
    return jobs


def _batches(jobs: int) -> int:
    """How many batches `jobs` jobs take at least."""
    return -(-jobs // queuekit.queue.BULK_BATCH_SIZE)


async def _statuses(queue: Queue, jobs: list[Job]) -> list[JobStatus]:
    return [(await queue.get_job(job.id)).status for job in jobs]


async def test_list_jobs_filters_by_type(queue: Queue, backend: Backend) -> None:
    await queue.enqueue_many(queuekit.new_job("email", queue=q) for q in "ab" for _ in range(4))
    others = await queue.enqueue_many(queuekit.new_job("report", queue="a") for _ in range(5))
    await claim(backend, 3, queue="a")  # the three oldest of queue a: emails
    assert len((await queue.list_jobs(type="email")).jobs) == 8
    reports = await queue.list_jobs(type="report")
    assert [job.id for job in reports.jobs] == [job.id for job in reversed(others)]
    assert len((await queue.list_jobs(type="email", queue="b")).jobs) == 4
    running = await queue.list_jobs(type="email", status="running")
    assert len(running.jobs) == 3 and {job.queue for job in running.jobs} == {"a"}
    assert (await queue.list_jobs(type="report", status="running")).jobs == []
    assert (await queue.list_jobs(type="nothing")).jobs == []
    with pytest.raises(InvalidNameError):
        await queue.list_jobs(type="bad type")


async def test_paging_through_a_type_filter(queue: Queue) -> None:
    wanted = []
    for n in range(12):
        await queue.enqueue("noise", queue=f"q{n % 3}")
        wanted.append(await queue.enqueue("needle", queue=f"q{n % 2}"))
    seen: list[str] = []
    cursor = None
    while True:
        page = await queue.list_jobs(type="needle", limit=5, cursor=cursor)
        assert len(page.jobs) == 5 or page.next_cursor is None
        seen += [job.id for job in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [job.id for job in reversed(wanted)]


async def test_replay_all_replays_dead_and_cancelled_jobs(queue: Queue, backend: Backend) -> None:
    dead = await _dead(queue, backend, 7)
    cancelled = await queue.enqueue_many(queuekit.new_job("t") for _ in range(2))
    for job in cancelled:
        await queue.cancel(job.id)
    live = await queue.enqueue("t")
    progress: list[int] = []
    assert await queue.replay_all(on_progress=progress.append) == 9
    assert progress == sorted(progress) and progress[-1] == 9 and len(progress) >= _batches(9)
    replayed = [await queue.get_job(job.id) for job in dead + cancelled]
    assert {(job.status, job.attempts, job.finished_at) for job in replayed} == {
        (JobStatus.PENDING, 0, None)
    }
    assert (await queue.get_job(live.id)).status == JobStatus.PENDING
    assert len(await claim(backend, 20)) == 10
    assert await queue.replay_all() == 0


async def test_replay_all_filters_by_queue_type_and_status(queue: Queue, backend: Backend) -> None:
    a_t = await _dead(queue, backend, 4, queue="a")
    a_u = await _dead(queue, backend, 2, queue="a", type="u")
    b_t = await _dead(queue, backend, 3, queue="b")
    cancelled = await queue.enqueue("t", queue="a")
    await queue.cancel(cancelled.id)
    assert await queue.replay_all(queue="a", type="t", status="dead") == 4
    assert set(await _statuses(queue, a_t)) == {JobStatus.PENDING}
    assert set(await _statuses(queue, a_u + b_t)) == {JobStatus.DEAD}
    assert (await queue.get_job(cancelled.id)).status == JobStatus.CANCELLED
    assert await queue.replay_all(type="u") == 2
    assert await queue.replay_all(queue="b") == 3
    assert await queue.replay_all(status=JobStatus.CANCELLED) == 1


async def test_replay_all_leaves_jobs_whose_unique_key_is_held(
    queue: Queue, backend: Backend
) -> None:
    blocked = (await _dead(queue, backend, 1, queue="x", unique_key="held"))[0]
    holder = await queue.enqueue("t", queue="x", unique_key="held")
    twins = await _dead(queue, backend, 1, unique_key="twin") + await _dead(
        queue, backend, 1, unique_key="twin"
    )
    free = await _dead(queue, backend, 4)
    # Of two dead jobs with one key, one is replayed and then holds the key.
    assert await queue.replay_all() == 5
    assert (await queue.get_job(blocked.id)).status == JobStatus.DEAD
    assert sorted(await _statuses(queue, twins)) == [JobStatus.DEAD, JobStatus.PENDING]
    assert set(await _statuses(queue, free)) == {JobStatus.PENDING}
    assert (await queue.get_job(holder.id)).status == JobStatus.PENDING
    assert await queue.replay_all() == 0


async def test_cancel_all_cancels_pending_failed_and_running_jobs(
    queue: Queue, backend: Backend
) -> None:
    jobs = await queue.enqueue_many(queuekit.new_job("t") for _ in range(8))
    running = await claim(backend, 3)
    failing = await claim_one(backend)
    assert await backend.fail(failing.attempt, "boom", retry_in=3600) == JobStatus.FAILED
    other = await queue.enqueue("t", queue="other")
    done = await queue.enqueue("t", queue="done")
    assert await backend.complete((await claim_one(backend, queue="done")).attempt)
    progress: list[int] = []
    assert await queue.cancel_all(queue="default", on_progress=progress.append) == 8
    assert progress[-1] == 8 and len(progress) >= _batches(8)
    assert set(await _statuses(queue, jobs)) == {JobStatus.CANCELLED}
    # The running jobs' attempts lost their leases: their workers stop them.
    lost = await backend.heartbeat([job.attempt for job in running], lease=30)
    assert lost == {job.attempt for job in running}
    assert (await queue.get_job(other.id)).status == JobStatus.PENDING
    assert (await queue.get_job(done.id)).status == JobStatus.COMPLETED
    assert await queue.cancel_all() == 1


async def test_cancel_all_filters_by_type_and_status(queue: Queue, backend: Backend) -> None:
    await queue.enqueue_many(queuekit.new_job("t") for _ in range(2))
    await queue.enqueue_many(queuekit.new_job("u") for _ in range(4))
    await claim(backend, 1)  # a t job
    assert await queue.cancel_all(type="u") == 4
    assert await queue.cancel_all(status="pending") == 1
    assert await queue.cancel_all(status=JobStatus.RUNNING) == 1


async def test_delete_all_never_deletes_running_jobs(queue: Queue, backend: Backend) -> None:
    await queue.enqueue_many(queuekit.new_job("t") for _ in range(6))
    running = await claim_one(backend)
    dead = await _dead(queue, backend, 2, queue="graveyard", type="u")
    kept = await queue.enqueue("t", queue="kept")
    progress: list[int] = []
    deleted = await queue.delete_all(queue="default", on_progress=progress.append)
    assert deleted == 5 and progress[-1] == 5
    assert (await queue.get_job(running.id)).status == JobStatus.RUNNING
    assert await queue.delete_all(type="u", status="dead") == 2
    assert [await backend.get_job(job.id) for job in dead] == [None, None]
    assert await queue.delete_all(status="completed") == 0
    assert await queue.delete_all() == 1
    assert await backend.get_job(kept.id) is None
    assert [job.id for job in (await queue.list_jobs()).jobs] == [running.id]


async def test_deleted_unique_jobs_free_their_keys(queue: Queue) -> None:
    first = await queue.enqueue("t", unique_key="k")
    assert await queue.delete_all(status="pending") == 1
    assert (await queue.enqueue("t", unique_key="k")).id != first.id


async def test_bulk_operations_check_their_filters(queue: Queue) -> None:
    for bulk, refused in (
        (queue.replay_all, JobStatus.PENDING),
        (queue.cancel_all, JobStatus.DEAD),
        (queue.delete_all, JobStatus.RUNNING),
    ):
        with pytest.raises(InvalidOptionError):
            await bulk(status=refused)
        with pytest.raises(InvalidOptionError):
            await bulk(status="exploded")
        with pytest.raises(InvalidNameError):
            await bulk(queue="bad queue")
        with pytest.raises(InvalidNameError):
            await bulk(type="")
        assert await bulk(queue="empty") == 0


async def test_cancel_all_cancels_running_jobs_while_their_worker_beats(
    queue: Queue, backend: Backend
) -> None:
    await queue.enqueue_many(queuekit.new_job("t") for _ in range(20))
    attempts = [job.attempt for job in await claim(backend, 20)]
    beats = 0

    async def beat() -> None:
        nonlocal beats
        while True:
            await backend.heartbeat(attempts, lease=30)
            beats += 1
            await anyio.lowlevel.checkpoint()  # the memory backend's heartbeat never waits

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(beat)
        await eventually(lambda: beats > 0, "the worker beat")
        assert await queue.cancel_all(status=JobStatus.RUNNING) == 20
        tasks.cancel_scope.cancel()
    assert await backend.heartbeat(attempts, lease=30) == set(attempts)

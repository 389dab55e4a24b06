"""PostgreSQL maintenance: pruning and purging in bounded batches, queues by loose index scan."""

from __future__ import annotations

import asyncio

import queuekit
from queuekit import JobStatus
from queuekit.backend import JobFilter
from queuekit.backends.postgres import PostgresBackend

from .conftest import OpenBackend


async def _finish_all(backend: PostgresBackend, count: int) -> None:
    jobs = await backend.claim({"default": count}, limit=count, lease=30, worker_id="w")
    assert len(jobs) == count
    await asyncio.gather(*(backend.complete(job.attempt) for job in jobs))


async def test_prune_deletes_in_bounded_batches(open_backend: OpenBackend) -> None:
    backend = await open_backend()
    backend._prune_batch_size = 7
    await backend.enqueue_many([queuekit.new_job("t") for _ in range(30)])
    await _finish_all(backend, 25)
    live = await backend.enqueue(queuekit.new_job("t", queue="live"))
    await asyncio.sleep(0.05)
    assert await backend.prune(3600, [JobStatus.COMPLETED]) == 0
    assert await backend.prune(0.01, [JobStatus.DEAD]) == 0
    assert await backend.prune(0.01, [JobStatus.COMPLETED, JobStatus.DEAD]) == 25
    stats = await backend.stats("default")
    assert (stats.completed, stats.pending) == (0, 5)
    assert await backend.get_job(live.id) is not None


async def test_bulk_deletes_go_in_bounded_batches(open_backend: OpenBackend) -> None:
    backend = await open_backend()
    await backend.enqueue_many([queuekit.new_job("t") for _ in range(10)])
    await backend.enqueue_many([queuekit.new_job("t", queue="other") for _ in range(3)])
    where = JobFilter(JobStatus.PENDING, queue="default")
    changed: list[int] = []
    after: int | None = 0
    while after is not None:
        batch = await backend.delete_batch(where, after=after, limit=4)
        changed.append(batch.changed)
        after = batch.after
    assert changed == [4, 4, 2]
    assert (await backend.stats("other")).pending == 3
    everywhere = await backend.delete_batch(JobFilter(JobStatus.PENDING), after=0, limit=4)
    assert (everywhere.changed, everywhere.after) == (3, None)


async def test_list_queues_walks_many_queues(pg_backend: PostgresBackend) -> None:
    names = [f"q{n:03d}" for n in range(120)] + ["A", "Z", "a.b", "a:b", "a-b", "a_b"]
    await pg_backend.enqueue_many(
        [queuekit.new_job("t", queue=name) for name in names for _ in range(2)]
    )
    assert await pg_backend.list_queues() == sorted(names)  # byte order, as elsewhere


async def test_listing_pages_through_filters(pg_backend: PostgresBackend) -> None:
    await pg_backend.enqueue_many([queuekit.new_job("t", queue="a") for _ in range(12)])
    await pg_backend.enqueue_many([queuekit.new_job("t", queue="b") for _ in range(5)])
    seen: list[str] = []
    cursor = None
    while True:
        page = await pg_backend.list_jobs(
            queue="a", status=JobStatus.PENDING, limit=5, cursor=cursor
        )
        seen += [job.id for job in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 12
    assert seen == sorted(seen, reverse=True)

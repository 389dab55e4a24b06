"""SQLite specifics of batches (migration 16): a batch of 10,000 jobs with its three callbacks
goes in with one `enqueue_many` and drains by completions, each callback decided once;
`batch_counts` and listing read the batch's own index. (tests/workflows/test_big_batch.py runs
100,000 jobs on every backend.)"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

import queuekit
from queuekit import BatchCounts, JobStatus, Queue
from queuekit.backends.sqlite.queries import SQL

WORKER = "w"
FAST = "?queuekit_synchronous=normal"
"""What these tests test does not need each commit synced to disk."""
SIZE = 10_000


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[Queue]:
    async with queuekit.connect(f"sqlite:///{tmp_path / 'jobs.db'}{FAST}") as queue:
        yield queue


async def test_a_batch_of_10000_jobs_goes_in_at_once_and_drains(queue: Queue) -> None:
    workflow = queuekit.batch(
        *(queuekit.new_job("member", n) for n in range(SIZE)),
        on_success=queuekit.new_job("on_success", queue="callbacks"),
        on_finish=queuekit.new_job("on_finish", queue="callbacks"),
        on_dead=queuekit.new_job("on_dead", queue="callbacks"),
        id="big",
    )
    jobs = await queue.enqueue_many(workflow)
    success, finish, dead = (job.id for job in jobs[SIZE:])
    assert await queue.batch_counts("big") == BatchCounts(pending=SIZE)
    drained = 0
    while running := await queue.backend.claim(
        {"default": 5000}, limit=5000, lease=600, worker_id=WORKER
    ):
        if not drained:
            # The first dies: on_dead runs at once, on_success is cancelled.
            first, *running = running
            assert await queue.backend.fail(first.attempt, "boom", retry_in=None)
            statuses = [(await queue.get_job(job_id)).status for job_id in (success, dead)]
            assert statuses == [JobStatus.CANCELLED, JobStatus.PENDING]
            drained = 1
        ends = [queue.backend.complete(job.attempt) for job in running]
        assert all(await asyncio.gather(*ends))
        drained += len(running)
    assert drained == SIZE
    statuses = [(await queue.get_job(job_id)).status for job_id in (success, finish, dead)]
    assert statuses == [JobStatus.CANCELLED, JobStatus.PENDING, JobStatus.PENDING]
    assert await queue.batch_counts("big") == BatchCounts(completed=SIZE - 1, dead=1)


async def test_a_batch_is_counted_and_listed_from_its_index(queue: Queue, tmp_path: Path) -> None:
    sql = SQL["list"].replace("{filter}", f" AND {SQL['search_batch_id']}")
    params = {"batch_id": "b", "before": 10, "limit": 5}
    with closing(sqlite3.connect(tmp_path / "jobs.db")) as db:
        listing = str(db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
        counting = str(db.execute(f"EXPLAIN QUERY PLAN {SQL['batch_counts']}", params).fetchall())
    assert "queuekit_jobs_batch" in listing and "TEMP B-TREE" not in listing, listing
    assert "queuekit_jobs_batch" in counting, counting

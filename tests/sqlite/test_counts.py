"""SQLite's kept counts (migration 17): exact under writers in several connections, minutes
folded once no longer needed apart, and counted from the jobs an older database holds."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import queuekit
from queuekit import JobStatus
from queuekit.backends.sqlite import SQLiteBackend

from .helpers import WORKER, opened_with


def _kept(path: Path) -> dict[tuple[str, str], int]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT queue, status, sum(n) FROM queuekit_counts GROUP BY 1, 2 HAVING sum(n) <> 0"
        )
        return {(queue, status): n for queue, status, n in rows}


def _counted(path: Path) -> dict[tuple[str, str], int]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT queue, status, count(*) FROM queuekit_jobs GROUP BY 1, 2")
        return {(queue, status): n for queue, status, n in rows}


async def _churn(backend: SQLiteBackend, queue: str) -> None:
    for round_ in range(30):
        await backend.enqueue_many(
            [queuekit.new_job("t", queue=queue, delay=90 * (n % 2)) for n in range(4)]
        )
        claimed = await backend.claim({queue: 3}, limit=3, lease=60.0, worker_id=WORKER)
        for n, job in enumerate(claimed):
            if n == 0:
                await backend.complete(job.attempt)
            elif n == 1:
                await backend.fail(job.attempt, "boom", retry_in=None)
                await backend.replay(job.id)
            else:
                await backend.cancel(job.id)
                if round_ % 2:
                    await backend.delete_job(job.id)
        await backend.rescue()  # folds


async def test_counts_stay_exact_with_writers_in_several_connections(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    backends = [SQLiteBackend(str(path)) for _ in range(3)]
    for backend in backends:
        await backend.open()
    try:
        await asyncio.gather(*(_churn(b, f"q{n}") for n, b in enumerate(backends)))
        counted = _counted(path)
        assert _kept(path) == counted
        for n in range(3):
            stats = await backends[0].stats(f"q{n}")
            for status in JobStatus:
                assert getattr(stats, status.value) == counted.get((f"q{n}", status.value), 0)
    finally:
        for backend in backends:
            await backend.close()


async def test_minutes_no_longer_needed_apart_are_folded(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with queuekit.connect(SQLiteBackend(str(path))) as queue:
        backend = queue.backend
        await backend.enqueue_many(
            [queuekit.new_job("t", delay=delay) for delay in (0, 0, 600, 86400)]
        )
        claimed = await backend.claim({"default": 2}, limit=2, lease=60.0, worker_id=WORKER)
        await backend.complete(claimed[0].attempt)
        await backend.fail(claimed[1].attempt, "boom", retry_in=None)
        counts = await backend.stats("default")
        assert (counts.completed_recently, counts.dead_recently, counts.scheduled) == (1, 1, 2)

        # Two hours on for the finished jobs, two days for the delayed: each status folds into
        # one count.
        with closing(sqlite3.connect(path)) as db, db:
            db.execute(
                "UPDATE queuekit_jobs SET finished_at = finished_at - 7200,"
                " scheduled_at = scheduled_at - 172800"
            )
        await backend.rescue()
        counts = await backend.stats("default")
        assert (counts.completed, counts.dead, counts.pending) == (1, 1, 2)
        assert (counts.completed_recently, counts.dead_recently, counts.scheduled) == (0, 0, 0)
        with closing(sqlite3.connect(path)) as db:
            minutes = db.execute("SELECT status, minute FROM queuekit_counts WHERE n <> 0")
            assert sorted(minutes) == [("completed", 0), ("dead", 0), ("pending", 0)]


async def test_a_database_at_version_16_counts_the_jobs_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "jobs.db"
    async with opened_with(str(path), monkeypatch, lambda version: version <= 16) as queue:
        old = queue.backend
        await old.enqueue_many([queuekit.new_job("t", queue=q) for q in "xxyz"])
        await old.enqueue(queuekit.new_job("t", queue="x", delay=3600))
        claimed = await old.claim({"x": 2}, limit=2, lease=60.0, worker_id=WORKER)
        await old.complete(claimed[0].attempt)
    async with queuekit.connect(SQLiteBackend(str(path))) as queue:
        upgraded = queue.backend
        assert _kept(path) == _counted(path)
        x = await upgraded.stats("x")
        assert (x.pending, x.scheduled, x.running, x.completed, x.completed_recently) == (
            1,
            1,
            1,
            1,
            1,
        )

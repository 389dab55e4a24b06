"""PostgreSQL's kept counts (migration 18): exact under concurrent writers and folds, minutes
folded once no longer needed apart, and counted from the jobs an older schema already holds."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

import queuekit
from queuekit import JobStatus
from queuekit.backends.postgres import PostgresBackend
from queuekit.backends.postgres import migrations as postgres_migrations
from queuekit.backends.sqlfiles import load_migrations

from ..conformance.helpers import WORKER
from .conftest import OpenBackend

QUEUES = ["a", "b", "c"]


async def _kept(backend: PostgresBackend) -> dict[tuple[str, str], int]:
    """The counts and the changes not folded yet, summed per queue and status."""
    sql = backend._statements.render(
        "SELECT queue, status, sum(n) AS n FROM ("
        " SELECT queue, status, n FROM {counts}"
        " UNION ALL SELECT queue, status, n FROM {count_changes}"
        ") AS kept GROUP BY 1, 2 HAVING sum(n) <> 0"
    )
    rows = await _pool(backend).fetch(sql)
    return {(row["queue"], row["status"]): row["n"] for row in rows}


async def _counted(backend: PostgresBackend) -> dict[tuple[str, str], int]:
    rows = await _pool(backend).fetch(
        f"SELECT queue, status, count(*) AS n FROM {backend.qualified_table} GROUP BY 1, 2"
    )
    return {(row["queue"], row["status"]): row["n"] for row in rows}


def _pool(backend: PostgresBackend) -> asyncpg.Pool:
    pool = backend._pool
    assert pool is not None
    return pool


async def _churn(backend: PostgresBackend, seed: int, rounds: int) -> None:
    """Enqueue, claim, finish every way, cancel, replay and delete, as many clients would."""
    rng = random.Random(seed)
    for _ in range(rounds):
        queue = rng.choice(QUEUES)
        await backend.enqueue_many(
            [
                queuekit.new_job("t", queue=queue, max_attempts=2, delay=rng.choice([0, 0, 90]))
                for _ in range(rng.randint(1, 8))
            ]
        )
        claimed = await backend.claim({queue: 5}, limit=5, lease=60.0, worker_id=WORKER)
        for job in claimed:
            outcome = rng.random()
            if outcome < 0.5:
                await backend.complete(job.attempt)
            elif outcome < 0.7:
                await backend.fail(job.attempt, "boom", retry_in=None)
            elif outcome < 0.9:
                await backend.fail(job.attempt, "boom", retry_in=0 if job.attempts < 2 else None)
            else:
                await backend.cancel(job.id)
        page = await backend.list_jobs(queue=queue, limit=5)
        for job in page.jobs:
            if job.status in (JobStatus.DEAD, JobStatus.CANCELLED) and rng.random() < 0.5:
                await backend.replay(job.id)
            elif job.status == JobStatus.COMPLETED and rng.random() < 0.3:
                await backend.delete_job(job.id)


async def test_counts_stay_exact_under_concurrent_writers_and_folds(
    open_backend: OpenBackend,
) -> None:
    clients = [await open_backend(pool_max="2") for _ in range(6)]
    folding = asyncio.Event()

    async def fold_until_done(client: PostgresBackend) -> int:
        folds = 0
        while not folding.is_set() or folds == 0:
            await client.stats(QUEUES[folds % len(QUEUES)])
            await client.rescue()  # folds too
            folds += 1
        return folds

    folders = [asyncio.create_task(fold_until_done(client)) for client in clients[4:]]
    try:
        await asyncio.gather(*(_churn(client, seed, 40) for seed, client in enumerate(clients[:4])))
    finally:
        folding.set()
        folds = await asyncio.gather(*folders)
    assert all(folds)
    counted = await _counted(clients[0])
    assert await _kept(clients[0]) == counted
    for name in QUEUES:
        stats = await clients[0].stats(name)
        for status in JobStatus:
            assert getattr(stats, status.value) == counted.get((name, status.value), 0)


async def test_minutes_no_longer_needed_apart_are_folded(pg_backend: PostgresBackend) -> None:
    await pg_backend.enqueue_many(
        [queuekit.new_job("t", delay=delay) for delay in (0, 0, 600, 86400)]
    )
    claimed = await pg_backend.claim({"default": 2}, limit=2, lease=60.0, worker_id=WORKER)
    await pg_backend.complete(claimed[0].attempt)
    await pg_backend.fail(claimed[1].attempt, "boom", retry_in=None)
    counts = await pg_backend.stats("default")
    assert (counts.completed_recently, counts.dead_recently, counts.scheduled) == (1, 1, 2)

    # Two hours on for the finished jobs, and for the delayed ones: the finished are out of
    # the success window and the delayed due, so each status folds into one count.
    pool = _pool(pg_backend)
    await pool.execute(
        f"UPDATE {pg_backend.qualified_table} SET"
        " finished_at = finished_at - interval '2 hours',"
        " scheduled_at = scheduled_at - interval '2 days'"
    )
    await pg_backend.rescue()
    counts = await pg_backend.stats("default")
    assert (counts.completed, counts.dead, counts.pending) == (1, 1, 2)
    assert (counts.completed_recently, counts.dead_recently, counts.scheduled) == (0, 0, 0)
    minutes = await pool.fetch(
        pg_backend._statements.render("SELECT status, minute::text FROM {counts} WHERE n <> 0")
    )
    assert sorted(map(tuple, minutes)) == [
        ("completed", "-infinity"),
        ("dead", "-infinity"),
        ("pending", "-infinity"),
    ]


async def test_a_schema_at_version_17_counts_the_jobs_it_holds(
    open_backend: OpenBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    version_17 = [(v, script) for v, script in load_migrations("postgres") if v <= 17]
    monkeypatch.setattr(postgres_migrations, "load_migrations", lambda dialect: version_17)
    old_client = await open_backend()
    monkeypatch.undo()
    # Today's statements on the old schema: those of a single job still fit it.
    for q in "xxyz":
        await old_client.enqueue(queuekit.new_job("t", queue=q))
    await old_client.enqueue(queuekit.new_job("t", queue="x", delay=3600))
    claimed = await old_client.claim({"x": 2}, limit=2, lease=60.0, worker_id=WORKER)
    await old_client.complete(claimed[0].attempt)

    upgraded = await open_backend()
    assert await _kept(upgraded) == await _counted(upgraded)
    x = await upgraded.stats("x")
    assert (x.pending, x.scheduled, x.running, x.completed, x.completed_recently) == (
        1,
        1,
        1,
        1,
        1,
    )

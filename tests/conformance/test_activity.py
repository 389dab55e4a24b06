"""Activity by minute: counts added from many clients sum exactly, per queue, by the backend's
clock, and old minutes are forgotten; the write that creates a minute samples the queue's depth,
capped, and no later write of that minute does."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta

import anyio
import pytest

import queuekit
from queuekit import Backend
from queuekit.activity import BUCKET_BOUNDS, BUCKETS, NO_TIMES, ActivityCounts, Minute, bucket_of
from queuekit.backends.memory import MemoryBackend

from ..setups import BackendSetup
from .helpers import claim_one

KEEP = 86_400.0


def times(*seconds: float) -> tuple[int, ...]:
    """Bucket counts of these wait or run times."""
    counts = [0] * BUCKETS
    for value in seconds:
        counts[bucket_of(value)] += 1
    return tuple(counts)


def total(minutes: list[Minute], queue: str) -> ActivityCounts:
    """Every listed minute's counts added up (an add may fall in the next minute)."""
    summed = ActivityCounts(queue)
    for minute in minutes:
        assert minute.queue == queue
        summed = summed + minute.counts
    return summed


async def test_adds_sum_per_queue(backend: Backend) -> None:
    before = datetime.now(UTC) - timedelta(minutes=2)
    await backend.add_activity(
        [
            ActivityCounts("mail", enqueued=3, completed=2, wait=times(0.002), run=times(0.3)),
            ActivityCounts("sms", dead=1, run=times(45.0)),
        ],
        keep=KEEP,
    )
    await backend.add_activity(
        [ActivityCounts("mail", enqueued=1, failed=1, wait=times(0.002, 7.0))], keep=KEEP
    )
    mail = await backend.activity("mail", 10)
    assert mail and all(minute.at >= before for minute in mail)
    assert all(minute.at.second == 0 and minute.at.microsecond == 0 for minute in mail)
    assert total(mail, "mail") == ActivityCounts(
        "mail",
        enqueued=4,
        completed=2,
        failed=1,
        wait=times(0.002, 0.002, 7.0),
        run=times(0.3),
    )
    assert total(await backend.activity("sms", 10), "sms") == ActivityCounts(
        "sms", dead=1, run=times(45.0)
    )
    assert await backend.activity("nothing-here", 10) == []


async def test_concurrent_adds_from_many_clients_all_count(backend_setup: BackendSetup) -> None:
    clients = [backend_setup.make() for _ in range(3)]
    for client in dict.fromkeys(clients):
        await client.open()
    try:

        async def add(client: Backend) -> None:
            for _ in range(10):
                await client.add_activity(
                    [
                        ActivityCounts("a", completed=1, run=times(0.01)),
                        ActivityCounts("b", enqueued=2),
                    ],
                    keep=KEEP,
                )

        async with anyio.create_task_group() as group:
            for client in clients:
                for _ in range(3):
                    group.start_soon(add, client)
        adds = 3 * 3 * 10
        reader = clients[0]
        assert total(await reader.activity("a", 10), "a") == ActivityCounts(
            "a", completed=adds, run=times(*[0.01] * adds)
        )
        assert total(await reader.activity("b", 10), "b") == ActivityCounts("b", enqueued=2 * adds)
    finally:
        for client in dict.fromkeys(clients):
            await client.close()


async def test_minutes_are_listed_oldest_first_within_the_window(backend: Backend) -> None:
    await backend.add_activity([ActivityCounts("q", enqueued=1)], keep=KEEP)
    (minute,) = await backend.activity("q", 1)
    assert minute.enqueued == 1
    assert minute.wait == NO_TIMES and minute.run == NO_TIMES
    assert minute.wait_p50 is None and minute.run_p95 is None


async def test_the_write_that_creates_a_minute_samples_the_depth(backend: Backend) -> None:
    """Ready jobs only (not running, not due later, not another queue's); a second write in the
    same minute leaves the sample alone (if the minute turned, the new one has its own)."""
    jobs = [queuekit.new_job("t", queue="deep") for _ in range(4)]
    await backend.enqueue_many(
        [*jobs, queuekit.new_job("t", queue="deep", delay=3600), queuekit.new_job("t")]
    )
    await claim_one(backend, queue="deep")
    await backend.add_activity([ActivityCounts("deep", enqueued=6)], keep=KEEP)
    await backend.enqueue_many([queuekit.new_job("t", queue="deep") for _ in range(2)])
    await backend.add_activity([ActivityCounts("deep", enqueued=2)], keep=KEEP)
    minutes = await backend.activity("deep", 10)
    assert [minute.depth for minute in minutes] in ([3], [3, 5])
    assert total(minutes, "deep").enqueued == 8


async def test_a_depth_sample_counts_at_most_the_cap(backend: Backend) -> None:
    await backend.enqueue_many([queuekit.new_job("t", queue="deep") for _ in range(5)])
    await backend.add_activity([ActivityCounts("deep", completed=1)], keep=KEEP, depth_cap=2)
    minutes = await backend.activity("deep", 10)
    assert minutes and {minute.depth for minute in minutes} == {2}
    await backend.add_activity([ActivityCounts("empty", completed=1)], keep=KEEP, depth_cap=2)
    assert {minute.depth for minute in await backend.activity("empty", 10)} == {0}


async def test_a_minute_without_a_sample_has_no_depth(
    backend_setup: BackendSetup, backend: Backend
) -> None:
    """As minutes kept from before depths were sampled read."""
    at = int(time.time() // 60 * 60) - 3600
    await plant_minute(backend_setup, backend, "q", at)
    (kept,) = await backend.activity("q", 2 * 60)
    assert kept.depth is None and kept.completed == 5


def test_percentiles_come_from_the_buckets() -> None:
    minute = Minute("q", datetime.now(UTC), run=times(*[0.02] * 90, *[4.0] * 10))
    assert minute.run_p50 is not None and 0.01 < minute.run_p50 <= 0.025
    assert minute.run_p95 is not None and 2.5 < minute.run_p95 <= 5.0
    beyond = Minute("q", datetime.now(UTC), wait=times(99_999.0))
    assert beyond.wait_p50 == BUCKET_BOUNDS[-1]


async def test_old_minutes_are_forgotten(backend_setup: BackendSetup, backend: Backend) -> None:
    """A write forgets its queues' minutes older than its `keep` (Redis: they expire)."""
    old = int(time.time() // 60 * 60) - 2 * 86_400
    await plant_minute(backend_setup, backend, "q", old)
    await plant_minute(backend_setup, backend, "other", old)
    if is_redis(backend):
        await backend.add_activity([ActivityCounts("q", enqueued=1)], keep=120.0)
        ttl = await redis_ttl(backend, "q")
        assert 0 < ttl <= 120 + 60
        return
    assert len(await backend.activity("q", 4 * 24 * 60)) == 1
    await backend.add_activity([ActivityCounts("q", enqueued=1)], keep=KEEP)
    (kept,) = await backend.activity("q", 4 * 24 * 60)
    assert kept.enqueued == 1 and kept.completed == 0
    # Only the queues written to are looked at.
    assert len(await backend.activity("other", 4 * 24 * 60)) == 1


async def plant_minute(setup: BackendSetup, backend: Backend, queue: str, at: int) -> None:
    """Store a minute at epoch `at` behind the backend's back, as an old write left it."""
    from queuekit.backends.postgres import PostgresBackend
    from queuekit.backends.redis import RedisBackend
    from queuekit.backends.sqlite import SQLiteBackend

    counts = ActivityCounts(queue, completed=5)
    if isinstance(backend, MemoryBackend):
        backend._activity[queue, float(at)] = counts.at(datetime.fromtimestamp(at, UTC))
    elif isinstance(backend, SQLiteBackend):
        with closing(sqlite3.connect(backend.path)) as db, db:
            db.execute(
                "INSERT INTO queuekit_activity (queue, minute, enqueued, completed, failed,"
                " dead, wait, run) VALUES (?, ?, 0, 5, 0, 0, ?, ?)",
                (queue, at, str(list(NO_TIMES)), str(list(NO_TIMES))),
            )
    elif isinstance(backend, PostgresBackend):
        import asyncpg

        assert setup.url is not None
        conn = await asyncpg.connect(setup.url.split("?")[0], statement_cache_size=0)
        try:
            await conn.execute(
                f'INSERT INTO "{backend.schema}"."{backend.table}_activity"'
                " VALUES ($1, to_timestamp($2), 0, 5, 0, 0, $3, $3)",
                queue,
                at,
                list(NO_TIMES),
            )
        finally:
            await conn.close()
    elif isinstance(backend, RedisBackend):  # through its own client: a Cluster's too
        key = backend._keys.of_queue(queue, f"activity:{at}")
        await backend._calls.commands([["HSET", key, "c", "5"]])
    else:
        pytest.fail(f"no way to plant a minute on {setup.name}")


def is_redis(backend: Backend) -> bool:
    from queuekit.backends.redis import RedisBackend

    return isinstance(backend, RedisBackend)


async def redis_ttl(backend: Backend, queue: str) -> float:
    """Seconds the Redis hash of `queue`'s current minute has left."""
    from queuekit.backends.redis import RedisBackend

    assert isinstance(backend, RedisBackend)
    (minute,) = await backend.activity(queue, 1)
    key = backend._keys.of_queue(queue, f"activity:{int(minute.at.timestamp())}")
    (ttl,) = await backend._calls.commands([["TTL", key]])
    return float(ttl)

"""Redis specifics: wake-ups within milliseconds, ids across queues, order, many claimers."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import cast

import anyio
import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

import queuekit
from queuekit import InvalidOptionError, JobStatus, Priority
from queuekit.backends.redis import RedisBackend
from queuekit.backends.redis import enqueue as enqueue_module
from queuekit.backends.redis.scripts import BATCH

from ..setups import BackendSetup
from .invariants import STATUSES, check_queue

EARLY = datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC)
WAKE_LIMIT = 3.0
"""A wake-up takes about one round trip, polling the whole 10 s timeout; the limit between the
two leaves room for a machine with every core busy."""


async def _wake_delay(backend: RedisBackend, queues: list[str], wake: Awaitable[object]) -> float:
    """Seconds a `wait_for_work` on `queues` waits for `wake`, which starts 50 ms in."""
    woke_after: list[float] = []

    async def waiter() -> None:
        started = time.monotonic()
        await backend.wait_for_work(queues, timeout=10)
        woke_after.append(time.monotonic() - started)

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await anyio.sleep(0.05)
        await wake
    return woke_after[0] - 0.05


async def test_wait_for_work_wakes_within_milliseconds(redis_backend: RedisBackend) -> None:
    queue = queuekit.Queue(redis_backend)
    for target in ("b", "a"):
        assert (
            await _wake_delay(redis_backend, ["a", "b"], queue.enqueue("t", queue=target))
            < WAKE_LIMIT
        )
        (claimed,) = await redis_backend.claim({target: 1}, limit=1, lease=30, worker_id="w")
        assert await redis_backend.fail(claimed.attempt, "again", retry_in=0) == JobStatus.FAILED
        # A retry wakes waiters too (its own token was taken by the claim loop's wait).
        await redis_backend.wait_for_work([target], timeout=0.01)
        (again,) = await redis_backend.claim({target: 1}, limit=1, lease=30, worker_id="w")
        assert again.id == claimed.id


async def test_wait_for_work_is_bounded_by_the_next_due_job(redis_backend: RedisBackend) -> None:
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue("t", delay=0.3)
    started = time.monotonic()
    # The enqueue left a wake-up token; the first wait takes it and returns at once.
    await redis_backend.wait_for_work(["default"], timeout=10)
    assert time.monotonic() - started < WAKE_LIMIT
    await redis_backend.wait_for_work(["default"], timeout=10)
    waited = time.monotonic() - started
    assert 0.25 < waited < 0.3 + WAKE_LIMIT
    assert await redis_backend.claim({"default": 1}, limit=1, lease=30, worker_id="w")


async def test_a_sooner_delayed_job_shortens_a_wait(redis_backend: RedisBackend) -> None:
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue("t", delay=60)
    started = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(redis_backend.wait_for_work, ["default"], 10.0)
        await anyio.sleep(0.05)
        await queue.enqueue("t", delay=0.01)  # wakes the waiter, which looks again
    assert time.monotonic() - started < 0.05 + WAKE_LIMIT


async def test_result_is_told_when_a_job_finishes(redis_backend: RedisBackend) -> None:
    queue = queuekit.Queue(redis_backend)
    job = await queue.enqueue("t")
    finished_after: list[float] = []

    async def wait_for_result() -> None:
        assert await queue.result(job.id, timeout=10) == {"ok": True}
        finished_after.append(time.monotonic())

    async with anyio.create_task_group() as group:
        group.start_soon(wait_for_result)
        group.start_soon(wait_for_result)  # two waiters on one job both hear of it
        (running,) = await redis_backend.claim({"default": 1}, limit=1, lease=30, worker_id="w")
        await anyio.sleep(0.1)
        completed_at = time.monotonic()
        assert await redis_backend.complete(running.attempt, '{"ok": true}')
    assert len(finished_after) == 2
    assert max(finished_after) - completed_at < WAKE_LIMIT
    watchers = await redis_backend._calls.commands(
        [("HLEN", redis_backend._keys.of_queue("default", "watchers"))]
    )
    assert watchers == [0]


async def test_result_times_out_and_sees_deleted_jobs(redis_backend: RedisBackend) -> None:
    queue = queuekit.Queue(redis_backend)
    job = await queue.enqueue("t")
    with pytest.raises(TimeoutError):
        await queue.result(job.id, timeout=0.1)
    async with anyio.create_task_group() as group:
        group.start_soon(redis_backend.wait_for_outcome, job.id, 10.0)
        await anyio.sleep(0.05)
        started = time.monotonic()
        assert await queue.delete_job(job.id)
    assert time.monotonic() - started < WAKE_LIMIT


async def test_an_id_is_unique_across_queues(redis_backend: RedisBackend) -> None:
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue("t", queue="a", id="order-1")
    with pytest.raises(InvalidOptionError):
        await queue.enqueue("t", queue="b", id="order-1")
    with pytest.raises(InvalidOptionError):
        await queue.enqueue_many(
            [
                queuekit.new_job("t", queue="c", id="new"),
                queuekit.new_job("t", queue="b", id="order-1"),
            ]
        )
    assert await redis_backend.get_job("new") is None  # a refused batch stores nothing
    assert await queue.list_queues() == ["a"]
    assert (await queue.get_job("order-1")).queue == "a"
    # Once deleted, the id is free again, in any queue.
    assert await queue.delete_job("order-1")
    assert (await queue.enqueue("t", queue="b", id="order-1")).queue == "b"


async def test_a_backend_names_a_queue_once_a_minute(
    redis_backend: RedisBackend, raw: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enqueues do not write the queue-name set each time; a name lost from it comes back
    with the first enqueue into its queue after the backend's memory of it runs out."""
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue("t", queue="a")
    assert await queue.list_queues() == ["a"]
    await raw.delete(redis_backend._keys.queues)  # lost, as by a failover of its node
    await queue.enqueue_many([queuekit.new_job("t", queue="a"), queuekit.new_job("t", queue="b")])
    assert await queue.list_queues() == ["b"]  # "a" was named less than a minute ago
    monkeypatch.setattr(enqueue_module, "NAME_AGAIN_SECONDS", 0.0)
    await queue.enqueue("t", queue="a")
    assert await queue.list_queues() == ["a", "b"]


async def test_seqs_follow_enqueue_order_within_a_queue(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """Each queue numbers its jobs from its own seq: the server's clock in µs, or the last
    seq + 1 when that is more (a bulk enqueue's jobs follow each other)."""
    queue = queuekit.Queue(redis_backend)
    before = (await raw.time())[0] * 1_000_000
    jobs = [await queue.enqueue("t", queue="a")]
    jobs += await queue.enqueue_many(queuekit.new_job("t", queue=q) for q in "abab")
    seq = {
        job.id: int(cast(str, await raw.hget(redis_backend._keys.job(job.queue, job.id), "seq")))
        for job in jobs
    }
    ordered = [seq[job.id] for job in jobs]
    assert min(ordered) >= before and ordered == sorted(ordered)
    assert ordered[1:] == list(range(ordered[1], ordered[1] + 4))  # the call's order
    last = {q: await raw.get(redis_backend._keys.of_queue(q, "seq")) for q in "ab"}
    assert last == {"a": str(ordered[3]), "b": str(ordered[4])}


async def test_an_interrupted_enqueue_leaves_the_id_usable(redis_backend: RedisBackend) -> None:
    """An index entry without its job (an enqueue cut short) does not block the id."""
    index = redis_backend._keys.index_of
    await redis_backend._calls.commands(
        [
            ("HSET", index(name), name, queue)
            for name, queue in (("orphan-1", "a"), ("orphan-2", "z"))
        ]
    )
    queue = queuekit.Queue(redis_backend)
    assert await queue.backend.get_job("orphan-1") is None
    assert (await queue.enqueue("t", queue="a", id="orphan-1")).id == "orphan-1"
    assert (await queue.enqueue("t", queue="b", id="orphan-2")).queue == "b"
    assert (await queue.get_job("orphan-2")).queue == "b"


async def test_odd_ids_keep_their_job_in_the_queue_slot(redis_backend: RedisBackend) -> None:
    queue = queuekit.Queue(redis_backend)
    odd = "we{ird} }{ id: ü*?[x]"
    # Ids keep to [A-Za-z0-9_.:-] now; a job stored with an odd id before that still works.
    request = queuekit.new_job("t", {"k": 1}, unique_key="{also} odd", run_at=EARLY)
    (job,) = await redis_backend.enqueue_many([dataclasses.replace(request, id=odd)])
    assert job.scheduled_at == EARLY
    queue_slot = key_slot(redis_backend._keys.of_queue("default", "ready").encode())
    assert key_slot(redis_backend._keys.job("default", odd).encode()) == queue_slot
    (claimed,) = await redis_backend.claim({"default": 1}, limit=1, lease=30, worker_id="w{1}")
    assert claimed.id == odd and claimed.worker_id == "w{1}"
    assert await redis_backend.complete(claimed.attempt, '"ok"')
    finished = await redis_backend.wait_for_outcome(odd, 1)
    assert finished is not None and finished.result == "ok"
    assert [j.id for j in (await queue.list_jobs(status="completed")).jobs] == [odd]


async def test_order_holds_at_millisecond_ties_and_across_queues(
    redis_backend: RedisBackend,
) -> None:
    """Jobs stored in the same millisecond keep enqueue order within a priority; across
    queues, priority first, then time, then enqueue order."""
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue_many(
        queuekit.new_job("t", {"n": n}, priority=(n % 2) * Priority.HIGH) for n in range(300)
    )
    claimed = await redis_backend.claim({"default": 300}, limit=300, lease=30, worker_id="w")
    numbers = [job.payload["n"] for job in claimed]
    assert numbers == [n for n in range(300) if n % 2] + [n for n in range(300) if not n % 2]

    for n in range(30):
        await queue.enqueue("t", {"n": n}, queue=f"q{n % 3}", priority=(n % 2) * Priority.HIGH)
    slots = {"q0": 30, "q1": 30, "q2": 30}
    claimed = await redis_backend.claim(slots, limit=30, lease=30, worker_id="w")
    numbers = [job.payload["n"] for job in claimed]
    assert numbers == [n for n in range(30) if n % 2] + [n for n in range(30) if not n % 2]


async def test_list_jobs_pages_across_queues_newest_first(redis_backend: RedisBackend) -> None:
    queue = queuekit.Queue(redis_backend)
    jobs = []
    for n in range(30):
        jobs.append(await queue.enqueue("t", queue=f"q{n % 4}"))
    seen: list[str] = []
    cursor = None
    while True:
        page = await queue.list_jobs(limit=7, cursor=cursor)
        seen += [job.id for job in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [job.id for job in reversed(jobs)]


async def test_sweeps_go_past_one_batch(redis_backend: RedisBackend, raw: aioredis.Redis) -> None:
    """rescue() and prune() work in batches of BATCH per queue until nothing is left."""
    queue = queuekit.Queue(redis_backend)
    total = BATCH * 2 + 7
    for name in ("a", "b"):
        await queue.enqueue_many(queuekit.new_job("t", queue=name) for _ in range(total))
        claimed = await redis_backend.claim({name: total}, limit=total, lease=0.01, worker_id="w")
        assert len(claimed) == total
    await anyio.sleep(0.05)
    assert (await redis_backend.rescue()).total == 2 * total
    for name in ("a", "b"):
        assert (await queue.stats(name)).failed == total
        for job in await redis_backend.claim({name: total}, limit=total, lease=30, worker_id="w"):
            assert await redis_backend.complete(job.attempt)
    assert await queue.prune(older_than=0) == 2 * total
    for name in ("a", "b"):
        assert await check_queue(raw, redis_backend, name) == dict.fromkeys(STATUSES, 0)
    assert await queue.list_queues() == []


async def test_many_claimers_across_connections_claim_each_job_once(
    store: BackendSetup, raw: aioredis.Redis
) -> None:
    total, queues = 3000, ("a", "b", "c")
    clients = [cast(RedisBackend, store.make()) for _ in range(6)]
    for client in clients:
        await client.open()
    try:
        queue = queuekit.Queue(clients[0])
        await queue.enqueue_many(
            queuekit.new_job("t", {"n": n}, queue=queues[n % 3], priority=n % 4)
            for n in range(total)
        )
        claims: Counter[str] = Counter()

        async def claimer(client: RedisBackend, name: str) -> None:
            while jobs := await client.claim(
                {"a": 3, "b": 2, "c": 4}, limit=5, lease=60, worker_id=name
            ):
                assert len(jobs) <= 5 and sum(job.queue == "b" for job in jobs) <= 2
                for job in jobs:
                    claims[job.id] += 1
                    assert await client.complete(job.attempt)

        async with anyio.create_task_group() as group:
            for n in range(30):
                group.start_soon(claimer, clients[n % len(clients)], f"claimer-{n}")
        assert len(claims) == total and set(claims.values()) == {1}
        for name in queues:
            stats = await queue.stats(name)
            assert stats.completed == total // 3 and stats.pending == stats.running == 0
            counts = await check_queue(raw, clients[0], name)
            assert counts["completed"] == total // 3
        assert (await queue.list_jobs(status=JobStatus.COMPLETED, limit=10)).next_cursor
    finally:
        for client in clients:
            await client.close()


async def test_jobs_stored_before_the_type_index_are_indexed_at_connect(
    store: BackendSetup, redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    queue = queuekit.Queue(redis_backend)
    emails = await queue.enqueue_many(
        queuekit.new_job("email", queue=q) for q in ("a", "b") for _ in range(3)
    )
    await queue.enqueue_many(queuekit.new_job("report", queue="a") for _ in range(2))
    # What an earlier version left: the same jobs, no type index.
    old_keys = [
        key async for key in raw.scan_iter(match=redis_backend._keys.of_queue("*", "type:*"))
    ]
    assert old_keys
    await raw.delete(*old_keys, redis_backend._keys.types_indexed)
    assert (await queue.list_jobs(type="email")).jobs == []
    later = cast(RedisBackend, store.make())
    async with queuekit.Queue(later) as upgraded:
        listed = await upgraded.list_jobs(type="email")
        assert [job.id for job in listed.jobs] == [job.id for job in reversed(emails)]
        assert len((await upgraded.list_jobs(type="report", queue="a")).jobs) == 2
    for name in ("a", "b"):
        await check_queue(raw, redis_backend, name)

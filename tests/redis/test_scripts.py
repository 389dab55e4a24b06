"""Scripts: one Cluster slot per call, every key declared, and recovery from NOSCRIPT."""

from __future__ import annotations

from collections import defaultdict

import anyio
import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot
from redis.exceptions import ResponseError

import queuekit
from queuekit import Attempt, JobStatus
from queuekit.backends.redis import SCRIPTS, RedisBackend, script_prelude

from .invariants import check_queue

WORKER = "w"


async def _exercise_every_script(backend: RedisBackend) -> None:
    """A workload that runs each script at least once, on two queues."""
    queue = queuekit.Queue(backend)
    await queue.enqueue("t", queue="a", unique_key="u")
    await queue.enqueue("t", queue="a", unique_key="u")  # a duplicate: no second job
    await queue.enqueue_many(
        [queuekit.new_job("t", queue="b", priority=20), queuekit.new_job("t", queue="a")]
    )
    later = await queue.enqueue("t", queue="b", delay=3600)
    jobs = await backend.claim({"a": 2, "b": 2}, limit=3, lease=30, worker_id=WORKER)
    assert len(jobs) == 3
    first, second, third = jobs
    assert await backend.heartbeat([job.attempt for job in jobs], lease=30) == set()
    assert await backend.complete(first.attempt, '"ok"')
    assert await backend.fail(second.attempt, "boom", retry_in=None) == JobStatus.DEAD
    assert await backend.snooze(third.attempt, 0.0)
    again = await backend.claim({"a": 5, "b": 5}, limit=5, lease=0.01, worker_id=WORKER)
    assert again
    await anyio.sleep(0.05)
    assert await backend.rescue() >= 1
    assert (await queue.cancel(later.id)).status == JobStatus.CANCELLED
    assert (await queue.replay(later.id)).status == JobStatus.PENDING
    assert (await queue.stats("a")).total >= 1
    await backend.wait_for_work(["a", "b"], timeout=0.01)
    assert await backend.wait_for_outcome(first.id, 0.01) is not None
    pending = await queue.enqueue("t", queue="c")
    assert await backend.wait_for_outcome(pending.id, 0.01) is None
    assert await queue.delete_job(pending.id)
    assert await queue.purge("b", JobStatus.PENDING) >= 1
    assert await queue.prune(older_than=0) >= 1
    await queue.pause("a")
    await queue.resume("a")


async def test_every_script_call_stays_in_one_slot(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    calls: dict[str, list[list[str]]] = defaultdict(list)
    redis_backend.script_observer = lambda name, keys: calls[name].append(list(keys))
    await _exercise_every_script(redis_backend)
    for name in "abc":
        await check_queue(raw, redis_backend, name)
    assert set(calls) == set(SCRIPTS), f"not exercised: {set(SCRIPTS) - set(calls)}"
    prefix = redis_backend.prefix
    queue_slots = {key_slot(f"{prefix}:{q}".encode()) for q in "abc"}
    global_slot = key_slot(prefix.encode())
    for name, key_lists in calls.items():
        for keys in key_lists:
            slots = {key_slot(key.encode()) for key in keys}
            assert len(slots) == 1, f"{name} touched slots {slots}: {keys}"
            expected = {global_slot} if name in ("reserve", "unindex") else queue_slots
            assert slots <= expected, f"{name} ran in an unexpected slot: {keys}"
            assert all(key.startswith("{" + prefix) for key in keys)


async def test_strict_prelude_rejects_undeclared_keys(raw: aioredis.Redis) -> None:
    """The tests run every script with this check, so an undeclared key would fail them."""
    prelude = script_prelude(strict_keys=True)
    with pytest.raises(ResponseError, match="undeclared key"):
        await raw.eval(prelude + "\nreturn rcall('GET', 'elsewhere')", 1, "declared")
    assert await raw.eval(prelude + "\nreturn rcall('EXISTS', KEYS[1])", 1, "declared") == 0


async def test_work_goes_on_after_script_flush(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """SCRIPT FLUSH (or a restart) drops the script cache: the next call reloads, no error."""
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue_many(queuekit.new_job("t", queue=q) for q in ("a", "b") for _ in range(20))
    done = 0
    for round_ in range(10):
        await raw.script_flush()
        # Single calls and pipelines (a claim across two queues) both recover.
        jobs = await redis_backend.claim({"a": 2, "b": 2}, limit=4, lease=30, worker_id=WORKER)
        assert len(jobs) == 4, f"round {round_}"
        await raw.script_flush()
        for job in jobs:
            assert await redis_backend.complete(job.attempt)
            done += 1
    assert done == 40
    assert (await queue.stats("a")).completed + (await queue.stats("b")).completed == 40


async def test_flush_during_concurrent_work_loses_nothing(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    total = 600
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue_many(queuekit.new_job("t", {"n": n}) for n in range(total))
    completed: list[str] = []

    async def drain() -> None:
        while jobs := await redis_backend.claim(
            {"default": 5}, limit=5, lease=30, worker_id=WORKER
        ):
            for job in jobs:
                assert await redis_backend.complete(job.attempt)
                completed.append(job.id)

    async def flusher() -> None:
        for _ in range(20):
            await raw.script_flush()
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(drain)
        group.start_soon(flusher)
    assert len(completed) == total and len(set(completed)) == total


async def test_ghost_attempts_touch_nothing(redis_backend: RedisBackend) -> None:
    ghost = Attempt("never-enqueued", 1)
    assert not await redis_backend.snooze(ghost, 1.0)
    assert await redis_backend.cancel("never-enqueued") is None
    assert await redis_backend.replay("never-enqueued") is None

"""Scripts: one Cluster slot per call, every key declared, and recovery from NOSCRIPT."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import anyio
import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot
from redis.exceptions import ResponseError

import queuekit
from queuekit import Attempt, JobStatus
from queuekit.backends.redis import SCRIPTS, RedisBackend, script_keys, script_prelude

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


async def test_a_finish_batch_is_one_script_call_per_queue(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """Completions, failures and snoozes made together go out as one `finish` call per queue,
    in one round trip, and each caller learns its own job's outcome; a stale attempt changes
    nothing even when the current attempt of the same job is in the batch."""
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue_many(
        [queuekit.new_job("t", {"n": n}, queue="a") for n in range(5)]
        + [queuekit.new_job("t", {"n": n}, queue="b", max_attempts=1) for n in range(2)]
    )
    jobs = await redis_backend.claim({"a": 5, "b": 2}, limit=7, lease=30, worker_id=WORKER)
    by_n = {(job.queue, job.payload["n"]): job for job in jobs}
    # a4's first attempt failed and a second attempt holds the job: the first is stale.
    stale = by_n["a", 4].attempt
    assert await redis_backend.fail(stale, "x", retry_in=0) == JobStatus.FAILED
    (again,) = await redis_backend.claim({"a": 1}, limit=1, lease=30, worker_id=WORKER)
    assert again.attempt == Attempt(stale.job_id, 2)
    watched = asyncio.ensure_future(redis_backend.wait_for_outcome(by_n["a", 0].id, 5))
    await anyio.sleep(0.05)  # the waiter is registered

    calls: dict[str, list[list[str]]] = defaultdict(list)
    redis_backend.script_observer = lambda name, keys: calls[name].append(list(keys))
    batches = redis_backend._batcher.batches
    outcomes = await asyncio.gather(
        redis_backend.complete(by_n["a", 0].attempt, '"done"'),
        redis_backend.fail(by_n["a", 1].attempt, "later", retry_in=60),
        redis_backend.fail(by_n["a", 2].attempt, "fatal", retry_in=None),
        redis_backend.snooze(by_n["a", 3].attempt, 0.0),
        redis_backend.complete(stale),
        redis_backend.fail(again.attempt, "again", retry_in=0),
        redis_backend.fail(by_n["b", 0].attempt, "last", retry_in=0),
        redis_backend.complete(by_n["b", 1].attempt),
        redis_backend.complete(Attempt("never-enqueued", 1)),
    )
    assert outcomes == [
        True,
        JobStatus.FAILED,
        JobStatus.DEAD,
        True,
        False,
        JobStatus.FAILED,
        JobStatus.DEAD,
        True,
        False,
    ]
    assert redis_backend._batcher.batches == batches + 1
    assert (await watched) is not None  # the waiter on a0 was woken
    assert set(calls) - {"watch", "unwatch"} == {"finish"}  # (those two are the waiter's)
    bound = len(script_keys()["finish"])
    per_queue = sorted((keys[0].split("}")[0], len(keys)) for keys in calls["finish"])
    tag = "{" + redis_backend.prefix
    assert per_queue == [(f"{tag}:a", bound + 2 * 6), (f"{tag}:b", bound + 2 * 2)]

    states = {key: await queue.get_job(job.id) for key, job in {**by_n, ("a", 5): again}.items()}
    expected = {
        ("a", 0): (JobStatus.COMPLETED, 1),
        ("a", 1): (JobStatus.FAILED, 1),
        ("a", 2): (JobStatus.DEAD, 1),
        ("a", 3): (JobStatus.PENDING, 0),  # a snooze does not count the attempt
        ("a", 4): (JobStatus.FAILED, 2),
        ("a", 5): (JobStatus.FAILED, 2),
        ("b", 0): (JobStatus.DEAD, 1),  # no attempts left
        ("b", 1): (JobStatus.COMPLETED, 1),
    }
    assert {k: (job.status, job.attempts) for k, job in states.items() if job} == expected
    assert states["a", 0] is not None and states["a", 0].result == "done"
    assert states["a", 4] is not None and states["a", 4].last_error == "again"
    for name in "ab":
        await check_queue(raw, redis_backend, name)

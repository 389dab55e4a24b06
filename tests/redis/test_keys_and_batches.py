"""Unique and debounce keys, and batches, on Redis: the key hashes behind the holds, pruning
past jobs kept for their keys, and a 100,000-job batch stored and drained in short scripts."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
import redis.asyncio as aioredis

import queuekit
from queuekit import JobExistsError, JobStatus
from queuekit.backends.redis import RedisBackend
from queuekit.backends.redis.enqueue import CHUNK, CHUNK_WEIGHT
from queuekit.backends.redis.scripts import BATCH

from ..waiting import eventually
from .invariants import check_queue

DAY = 86_400.0
WORKER = "w"


async def _complete_all(backend: RedisBackend, queue: str = "default") -> int:
    """Claim and complete every claimable job of `queue`, 500 at a time; how many."""
    done = 0
    while batch := await backend.claim({queue: 500}, limit=500, lease=60, worker_id=WORKER):
        outcomes = await asyncio.gather(*(backend.complete(job.attempt) for job in batch))
        assert set(outcomes) == {JobStatus.COMPLETED}
        done += len(batch)
    return done


async def test_the_unique_hash_names_holders_and_forgets_lapsed_ones(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    queue = queuekit.Queue(redis_backend)
    unique = redis_backend._keys.of_queue("default", "unique")
    held = await queue.enqueue("t", unique_key="held", unique_for=0.05)
    plain = await queue.enqueue("t", unique_key="plain")
    assert await _complete_all(redis_backend) == 2
    # A job that ends outside its states lets its key go at once; one inside keeps it.
    assert await raw.hgetall(unique) == {"held": held.id}
    stored: list[str] = []

    async def let_go() -> bool:
        job = await queue.enqueue("t", unique_key="held")
        stored.append(job.id)
        return job.id != held.id

    await eventually(let_go, "the hold ends with its period")
    # The enqueue that found the lapsed holder let it go and took the key, in one script.
    assert await raw.hgetall(unique) == {"held": stored[-1]}
    assert (await queue.enqueue("t", unique_key="plain")).id != plain.id
    assert await check_queue(raw, redis_backend, "default")


async def test_a_debounce_key_is_let_go_by_a_start_or_a_deletion(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    queue = queuekit.Queue(redis_backend)
    debounce = redis_backend._keys.of_queue("default", "debounce")
    first = await queue.enqueue("t", debounce_key="d")
    assert await _complete_all(redis_backend) == 1
    # A claim leaves the entry (it costs claims nothing); the next enqueue finds it lapsed.
    assert await raw.hgetall(debounce) == {"d": first.id}
    second = await queue.enqueue("t", debounce_key="d")
    assert second.id != first.id and await raw.hgetall(debounce) == {"d": second.id}
    assert await queue.delete_job(second.id)
    assert await raw.hgetall(debounce) == {}


async def test_pruning_goes_past_a_batch_of_jobs_kept_for_their_keys(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """Jobs kept for their keys stay at the head of the finished set: the sweep's next batch
    starts past them, so the jobs behind them are pruned all the same."""
    queue = queuekit.Queue(redis_backend)
    kept = BATCH + 10
    await queue.enqueue_many(
        queuekit.new_job("t", unique_key=f"k{n}", unique_for=DAY) for n in range(kept)
    )
    assert await _complete_all(redis_backend) == kept
    await queue.enqueue_many(queuekit.new_job("t") for _ in range(20))
    assert await _complete_all(redis_backend) == 20
    assert await queue.prune(older_than=0) == 20
    assert (await queue.stats()).completed == kept
    unique = redis_backend._keys.of_queue("default", "unique")
    assert await raw.hlen(unique) == kept


async def test_a_big_call_refuses_a_stored_id_before_storing_any(
    redis_backend: RedisBackend,
) -> None:
    queue = queuekit.Queue(redis_backend)
    taken = await queue.enqueue("t")
    jobs = [queuekit.new_job("t") for _ in range(CHUNK + 500)]
    jobs.append(queuekit.new_job("t", id=taken.id))
    with pytest.raises(JobExistsError):
        await queue.enqueue_many(jobs)
    assert (await queue.stats()).pending == 1


async def test_a_batch_larger_than_a_script_goes_in_short_scripts_and_drains(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """enqueue_many of a batch five chunks long and its callback stores at most `CHUNK` jobs
    per script (an edge weighing a quarter), the callback stored with the parents a chunk
    takes and linked to the rest after; then draining the batch decides its callbacks, each
    finish at O(1). (tests/workflows/test_big_batch.py runs 100,000 jobs on every backend.)"""
    calls: dict[str, list[int]] = defaultdict(list)
    redis_backend._calls.script_observer = lambda name, keys: calls[name].append(len(keys))
    queue = queuekit.Queue(redis_backend)
    size = CHUNK_WEIGHT + CHUNK
    batch = queuekit.batch(
        *(queuekit.new_job("member", n) for n in range(size)),
        on_finish=queuekit.new_job("on_finish"),
        id="big",
    )
    jobs = await queue.enqueue_many(batch)
    assert [job.status for job in jobs[-2:]] == [JobStatus.PENDING, JobStatus.WAITING]
    stores = calls["reserve_enqueue"] + calls["enqueue"]
    assert len(stores) == size // CHUNK + 1 and max(stores) <= 2 * CHUNK + 30
    assert len(calls["link"]) == 1
    callback = await queue.get_job(jobs[-1].id)
    assert callback.parents is not None and len(callback.parents) == size
    assert await queue.batch_counts("big") == queuekit.BatchCounts(pending=size)
    assert await _complete_all(redis_backend) == size + 1
    assert (await queue.get_job(jobs[-1].id)).status == JobStatus.COMPLETED
    assert await queue.batch_counts("big") == queuekit.BatchCounts(completed=size)

"""Upgrading a prefix written before the index was sharded: one `{P}:index`, one `{P}:seq`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

import pytest
import redis.asyncio as aioredis

import queuekit
from queuekit import InvalidOptionError, Job, new_job
from queuekit.backends.redis import RedisBackend

from ..setups import BackendSetup
from .invariants import check_queue

EARLY = datetime(2020, 1, 1, tzinfo=UTC)
"""Every job is due at this same instant, so claims order them by seq alone."""


async def to_old_layout(raw: aioredis.Redis, backend: RedisBackend, jobs: list[Job]) -> None:
    """Rewrite a prefix as the earlier layout kept it: the index in `{P}:index`, seqs from the
    `{P}:seq` counter (1, 2, ... in enqueue order), no queue seqs, no shards, no flag."""
    keys = backend._keys
    for old_seq, job in enumerate(jobs, start=1):
        key = keys.job(job.queue, job.id)
        seq = int(cast(str, await raw.hget(key, "seq")))
        await raw.hset(key, "seq", str(old_seq))
        for name in ("all", "status:pending", f"type:{job.type}"):
            await raw.zadd(keys.of_queue(job.queue, name), {job.id: old_seq})
        ready = keys.of_queue(job.queue, "ready")
        member = f"{job.priority:04d}{seq:016d}{job.id}"
        score = await raw.zscore(ready, member)
        assert score is not None
        await raw.zrem(ready, member)
        await raw.zadd(ready, {f"{job.priority:04d}{old_seq:016d}{job.id}": score})
        assert await raw.hdel(keys.index_of(job.id), job.id) == 1
        await raw.hset(keys.unsharded_index, job.id, job.queue)
    queues = {job.queue for job in jobs}
    await raw.delete(keys.index_sharded, *(keys.of_queue(q, "seq") for q in queues))
    await raw.set(f"{{{backend.prefix}}}:seq", str(len(jobs)))


async def test_an_old_layout_is_sharded_at_open(
    store: BackendSetup, redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    queue = queuekit.Queue(redis_backend)
    old = [await queue.enqueue("t", n, queue="ab"[n % 2], run_at=EARLY) for n in range(6)]
    await to_old_layout(raw, redis_backend, old)

    # Several processes opening at once all move the entries; none is lost or doubled.
    upgraded = [cast(RedisBackend, store.make()) for _ in range(3)]
    try:
        await asyncio.gather(*(backend.open() for backend in upgraded))
        backend = upgraded[0]
        keys = backend._keys
        assert await raw.exists(keys.unsharded_index) == 0
        assert await raw.get(keys.index_sharded) == "1"
        for job in old:
            assert await raw.hget(keys.index_of(job.id), job.id) == job.queue
        queue = queuekit.Queue(backend)
        assert [await queue.get_job(job.id) for job in old] == old

        # An old job's id stays taken in every queue.
        with pytest.raises(InvalidOptionError, match="already exists"):
            await queue.enqueue("t", queue="b", id=old[0].id)
        with pytest.raises(InvalidOptionError, match="already exists"):
            await backend.enqueue_many([new_job("t", queue="c", id=old[1].id)])

        # New jobs, due at the same instant, line up after the old ones, in enqueue order.
        new = [await queue.enqueue("t", n, queue="ba"[n % 2], run_at=EARLY) for n in range(6)]
        claimed = await backend.claim({"a": 12, "b": 12}, limit=12, lease=30, worker_id="w")
        assert [job.id for job in claimed] == [job.id for job in old + new]
        for name in "ab":
            await check_queue(raw, backend, name)
    finally:
        for backend in upgraded:
            await backend.close()

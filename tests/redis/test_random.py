"""Random sequences of every call: the layout stays consistent and agrees with stats."""

from __future__ import annotations

import contextlib
import random

import anyio
import pytest
import redis.asyncio as aioredis

import queuekit
from queuekit import InvalidOptionError, Job, JobRunningError, JobStatus, OnFailure, Parent
from queuekit.backends.redis import RedisBackend
from queuekit.retry import next_retry

from .invariants import check_queue

QUEUES = ("a", "b")


async def _check(raw: aioredis.Redis, backend: RedisBackend) -> None:
    queue = queuekit.Queue(backend)
    for name in QUEUES:
        counts = await check_queue(raw, backend, name)
        stats = await queue.stats(name)
        assert counts == {
            "waiting": stats.waiting,
            "pending": stats.pending,
            "running": stats.running,
            "failed": stats.failed,
            "completed": stats.completed,
            "dead": stats.dead,
            "cancelled": stats.cancelled,
        }
        for status, count in counts.items():
            page = await queue.list_jobs(queue=name, status=status, limit=1000)
            assert len(page.jobs) == count and {job.status for job in page.jobs} <= {status}
            typed = await queue.list_jobs(queue=name, status=status, type="t", limit=1000)
            assert {job.id for job in typed.jobs} == {j.id for j in page.jobs if j.type == "t"}


@pytest.mark.parametrize("seed", range(3))
async def test_random_calls_keep_the_layout_consistent(
    seed: int, redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    rng = random.Random(seed)
    backend = redis_backend
    queue = queuekit.Queue(backend)
    ids: list[str] = []
    held: list[Job] = []

    def request() -> queuekit.NewJob:
        return queuekit.new_job(
            rng.choice(("t", "u")),
            queue=rng.choice(QUEUES),
            priority=rng.choice((0, 10, 20)),
            unique_key=rng.choice((None, None, "k1", "k2")),
            delay=rng.choice((0, 0, 0, 3600)),
            max_attempts=rng.choice((1, 2, 3)),
            id=rng.choice(ids) if ids and rng.random() < 0.1 else None,
            after=[
                Parent(parent, rng.choice(list(OnFailure)))
                for parent in rng.sample(ids, min(len(ids), rng.choice((0, 0, 1, 2))))
            ],
        )

    def some_id() -> str:
        return rng.choice(ids) if ids else "none"

    for step in range(300):
        op = rng.choice(
            ["enqueue"] * 4
            + ["claim"] * 4
            + ["finish"] * 5
            + ["heartbeat", "rescue"]
            + ["cancel", "replay", "delete", "purge", "prune", "bulk"]
        )
        if op == "enqueue":
            try:
                jobs = await queue.enqueue_many(request() for _ in range(rng.randint(1, 4)))
            except InvalidOptionError:
                continue  # an id that exists already, a parent deleted or the job itself
            ids += [job.id for job in jobs]
        elif op == "claim":
            slots = {name: rng.randint(0, 3) for name in QUEUES}
            lease = rng.choice((3600.0, 3600.0, 0.001))
            claimed = await backend.claim(
                slots, limit=rng.randint(1, 4), lease=lease, worker_id="w"
            )
            assert all(job.status == JobStatus.RUNNING for job in claimed)
            assert sum(job.queue == "a" for job in claimed) <= slots["a"]
            held += claimed
        elif op == "finish" and held:
            job = held.pop(rng.randrange(len(held)))
            how = rng.choice(("complete", "fail", "retry", "snooze"))
            if how == "complete":
                await backend.complete(job.attempt, rng.choice((None, '{"r": 1}')))
            elif how == "fail":
                await backend.fail(job.attempt, "boom", retry_in=None)
            elif how == "retry":
                wait = next_retry(job, rng.choice((0.0, 3600.0)))  # as the worker decides
                await backend.fail(job.attempt, "boom", retry_in=wait)
            else:
                await backend.snooze(job.attempt, rng.choice((0.0, 3600.0)))
        elif op == "heartbeat" and held:
            await backend.heartbeat([job.attempt for job in held], lease=3600)
        elif op == "rescue":
            await anyio.sleep(0.002)
            await backend.rescue()
        elif op == "cancel":
            await backend.cancel(some_id())
        elif op == "replay":
            await backend.replay(some_id())
        elif op == "delete":
            with contextlib.suppress(JobRunningError):
                await backend.delete_job(some_id())
        elif op == "purge":
            status = rng.choice([s for s in JobStatus if s != JobStatus.RUNNING])
            await queue.purge(rng.choice(QUEUES), status)
        elif op == "bulk":
            bulk = rng.choice((queue.replay_all, queue.cancel_all, queue.delete_all))
            await bulk(queue=rng.choice((None, *QUEUES)), type=rng.choice((None, "t", "u")))
        elif op == "prune":
            await backend.prune(rng.choice((0.0, 3600.0)), [JobStatus.COMPLETED, JobStatus.DEAD])
        if step % 60 == 59:
            await _check(raw, backend)
    await _check(raw, backend)

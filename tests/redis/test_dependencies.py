"""Dependencies on Redis: races between producers and finishers, a large fan-in at O(1) per
parent, the two-step enqueue of a workflow across queues (a Cluster's one-slot rule is in
test_cluster.py)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis

import queuekit
from queuekit import JobStatus, OnFailure, Parent, UnknownParentError
from queuekit.backends.redis import RedisBackend

from ..setups import BackendSetup
from .invariants import check_queue

WORKER = "w"
QUEUES = ("default", "other")


async def test_producers_and_finishers_racing_leave_no_job_waiting(
    store: BackendSetup, raw: aioredis.Redis
) -> None:
    """Producers enqueue dependents of jobs that finishers complete meanwhile (a parent may
    finish before, during or after its dependent's enqueue): every job runs once, after all
    its parents completed, and nothing is left waiting."""
    backends = [store.make() for _ in range(6)]
    for backend in backends:
        await backend.open()
    producers, finishers = backends[:4], backends[4:]
    roots = await queuekit.Queue(producers[0]).enqueue_many(
        queuekit.new_job("t", n, queue=QUEUES[n % 2]) for n in range(40)
    )
    known = [job.id for job in roots]
    started: dict[str, float] = {}
    producing = len(producers)

    async def produce(backend: Any, seed: int) -> None:
        nonlocal producing
        rng = random.Random(seed)
        queue = queuekit.Queue(backend)
        for n in range(60):
            parents = rng.sample(known, rng.randint(1, 4))
            job = await queue.enqueue("t", n, queue=rng.choice(QUEUES), after=parents)
            known.append(job.id)
        producing -= 1

    async def finish(backend: Any) -> None:
        while True:
            claimed = await backend.claim(
                dict.fromkeys(QUEUES, 10), limit=10, lease=60, worker_id=WORKER
            )
            for job in claimed:
                assert job.id not in started, f"{job.id} ran twice"
                assert job.started_at is not None
                started[job.id] = job.started_at.timestamp()
                assert await backend.complete(job.attempt) == JobStatus.COMPLETED
            if claimed:
                continue
            if not producing:
                stats = [await queuekit.Queue(backend).stats(name) for name in QUEUES]
                if not any(s.waiting or s.pending or s.running for s in stats):
                    return
            await backend.wait_for_work(list(QUEUES), 0.05)

    try:
        async with anyio.create_task_group() as group:
            for seed, backend in enumerate(producers):
                group.start_soon(produce, backend, seed)
            for backend in finishers:
                group.start_soon(finish, backend)
        jobs = await backends[0].get_jobs(known)
        assert len(jobs) == len(known) == len(started)
        finished = {job.id: job.finished_at for job in jobs}
        for job in jobs:
            assert job.status == JobStatus.COMPLETED
            for parent in job.parents or ():
                parent_finished = finished[parent.job_id]
                assert parent_finished is not None
                assert parent_finished.timestamp() <= started[job.id], "ran before a parent"
        for name in QUEUES:
            await check_queue(raw, backends[0], name)  # type: ignore[arg-type]
    finally:
        for backend in backends:
            await backend.close()


async def test_a_fan_in_of_ten_thousand_parents_costs_each_parent_one_step(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """A parent's end decides its dependent by a counter: it never reads the dependent's
    10,000 edges (made unreadable here), so each finish costs the same however many parents
    the dependent has."""
    queue = queuekit.Queue(redis_backend)
    parents = await queue.enqueue_many(queuekit.new_job("t", n) for n in range(10_000))
    child = await queue.enqueue("t", "join", after=parents)
    assert child.status == JobStatus.WAITING
    read = await queue.get_job(child.id)
    assert read.parents == tuple(Parent(job.id) for job in parents)
    edges = redis_backend._keys.of_queue("default", f"parents:{child.id}")
    saved = await raw.dump(edges)
    await raw.delete(edges)
    await raw.set(edges, "not a list: a finish reading it would fail")
    job_key = redis_backend._keys.job("default", child.id)
    left = len(parents)
    while left:
        batch = await redis_backend.claim({"default": 500}, limit=500, lease=60, worker_id=WORKER)
        assert batch and child.id not in {job.id for job in batch}
        # Completed together: the finish batcher writes them in one script call.
        outcomes = await asyncio.gather(*(redis_backend.complete(job.attempt) for job in batch))
        assert outcomes == [JobStatus.COMPLETED] * len(batch)
        left -= len(batch)
        if left:
            assert await raw.hget(job_key, "open_parents") == str(left)
    assert await raw.hget(job_key, "status") == "pending"
    await raw.delete(edges)
    assert saved is not None
    await raw.restore(edges, 0, saved)
    (released,) = await redis_backend.claim({"default": 1}, limit=1, lease=60, worker_id=WORKER)
    assert released.id == child.id


async def test_a_two_step_enqueue_stores_a_workflow_across_queues_in_call_order(
    redis_backend: RedisBackend, raw: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When one script cannot take the whole call (an id indexed elsewhere), each run of jobs
    of one queue is a script call, in call order, so a parent in another queue is stored
    before its dependent; a missing parent refuses its call and the calls after it."""

    async def two_steps(*_: Any) -> None:
        return None  # as a reserve_enqueue answering 'fallback'

    monkeypatch.setattr(redis_backend._enqueuer, "_enqueue_at_once", two_steps)
    queue = queuekit.Queue(redis_backend)
    first = queuekit.new_job("t", 1, queue="default")
    second = queuekit.new_job("t", 2, queue="other", after=[first])
    third = queuekit.new_job("t", 3, queue="default", after=[second, first])
    stored = await queue.enqueue_many([first, second, third])
    assert [job.status for job in stored] == [
        JobStatus.PENDING,
        JobStatus.WAITING,
        JobStatus.WAITING,
    ]
    for name, job in (("default", first), ("other", second), ("default", third)):
        (running,) = await redis_backend.claim({name: 1}, limit=1, lease=60, worker_id=WORKER)
        assert running.id == job.id
        assert await redis_backend.complete(running.attempt) == JobStatus.COMPLETED
    with pytest.raises(UnknownParentError):
        await queue.enqueue_many(
            [queuekit.new_job("t", queue="other", after=["missing"]), queuekit.new_job("t")]
        )
    for name in QUEUES:
        await check_queue(raw, redis_backend, name)


async def test_a_replay_counts_a_parent_brought_back_after_its_dependent(
    redis_backend: RedisBackend,
) -> None:
    """P's death cancels Y, Y's cancels X, and D (after P, and X with RUN) is cancelled by P.
    P's replay brings D back while X is still cancelled (finished, for a RUN edge), then X:
    D must then count X as unfinished too, and wait for it."""
    queue = queuekit.Queue(redis_backend)
    parent = await queue.enqueue("t", "P", max_attempts=1)
    middle = await queue.enqueue("t", "Y", after=[parent])
    late = await queue.enqueue("t", "X", after=[middle])
    runs = await queue.enqueue("t", "D", after=[parent, Parent(late.id, OnFailure.RUN)])
    (running,) = await redis_backend.claim({"default": 1}, limit=1, lease=60, worker_id=WORKER)
    assert await redis_backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
    assert [job.status for job in await redis_backend.get_jobs([middle.id, late.id, runs.id])] == [
        JobStatus.CANCELLED
    ] * 3
    await queue.replay(parent.id)
    for job in (parent, middle, late):
        (running,) = await redis_backend.claim({"default": 1}, limit=1, lease=60, worker_id=WORKER)
        assert running.id == job.id, f"claimed {running.payload}, not {job.payload}"
        assert (await queue.get_job(runs.id)).status == JobStatus.WAITING
        assert await redis_backend.complete(running.attempt) == JobStatus.COMPLETED
    assert (await queue.get_job(runs.id)).status == JobStatus.PENDING


async def test_a_deleted_job_leaves_its_parents_edges(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """A dependent deleted drops out of its parents' dependents (in any queue); a parent deleted
    stays among its dependents' parents, as they were given, and its own lists go."""
    queue = queuekit.Queue(redis_backend)
    parent = await queue.enqueue("t")
    kept = await queue.enqueue("t", queue="other", after=[Parent(parent.id, OnFailure.RUN)])
    dropped = await queue.enqueue("t", queue="other", after=[parent])
    assert (await queue.get_job(parent.id)).dependents == (kept.id, dropped.id)
    assert await queue.delete_job(dropped.id)
    assert (await queue.get_job(parent.id)).dependents == (kept.id,)
    assert await queue.delete_job(parent.id)
    read = await queue.get_job(kept.id)
    assert (read.status, read.parents) == (JobStatus.PENDING, (Parent(parent.id, OnFailure.RUN),))
    keys = [
        redis_backend._keys.of_queue(name, f"{edges}:{job.id}")
        for name, job in (("default", parent), ("other", dropped))
        for edges in ("parents", "dependents")
    ]
    assert await raw.exists(*keys) == 0
    for name in QUEUES:
        await check_queue(raw, redis_backend, name)

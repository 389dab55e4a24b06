"""Conformance: claim order, limits, slots per queue, and many concurrent claimers."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import anyio

import queuekit
from queuekit import Backend, JobStatus, Priority, Queue

from ..setups import BackendSetup
from .helpers import WORKER, claim, claim_one


async def test_priority_first_then_fifo(queue: Queue, backend: Backend) -> None:
    order = [
        ("low-1", Priority.LOW),
        ("normal-1", Priority.NORMAL),
        ("critical", Priority.CRITICAL),
        ("normal-2", Priority.NORMAL),
        ("high", Priority.HIGH),
        ("low-2", Priority.LOW),
        ("normal-3", Priority.NORMAL),
    ]
    for name, priority in order:
        await queue.enqueue(name, priority=priority)
    claimed = await claim(backend, 10)
    assert [job.type for job in claimed] == [
        "critical",
        "high",
        "normal-1",
        "normal-2",
        "normal-3",
        "low-1",
        "low-2",
    ]


async def test_earlier_scheduled_at_first_within_a_priority(queue: Queue, backend: Backend) -> None:
    # Times fixed before the enqueues: with delays, a slow enqueue could reorder them.
    start = datetime.now(UTC)
    late = await queue.enqueue("late", run_at=start + timedelta(seconds=0.2))
    early = await queue.enqueue("early", run_at=start + timedelta(seconds=0.1))
    now = await queue.enqueue("now", run_at=start)
    await anyio.sleep(0.3)
    assert [job.id for job in await claim(backend, 3)] == [now.id, early.id, late.id]


async def test_claim_sets_running_state(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    claimed = await claim_one(backend, lease=10)
    assert claimed.id == job.id
    assert claimed.status == JobStatus.RUNNING and claimed.attempts == 1
    assert claimed.worker_id == WORKER and claimed.started_at is not None
    assert claimed.lease_expires_at is not None
    lease = (claimed.lease_expires_at - claimed.started_at).total_seconds()
    assert abs(lease - 10) < 0.01
    assert await queue.get_job(job.id) == claimed


async def test_claim_respects_the_limit(queue: Queue, backend: Backend) -> None:
    await queue.enqueue_many(queuekit.new_job("t") for _ in range(10))
    assert len(await claim(backend, 3)) == 3
    assert len(await claim(backend, 100)) == 7
    assert await claim(backend, 100) == []


async def test_claim_respects_slots_per_queue(queue: Queue, backend: Backend) -> None:
    for name in ("emails", "default", "ignored"):
        await queue.enqueue_many(queuekit.new_job("t", queue=name) for _ in range(5))
    claimed = await backend.claim({"emails": 2, "default": 10}, limit=5, lease=30, worker_id="w")
    counts = Counter(job.queue for job in claimed)
    assert len(claimed) == 5 and counts["emails"] <= 2 and "ignored" not in counts
    rest = await backend.claim({"emails": 10, "default": 0}, limit=10, lease=30, worker_id="w")
    assert Counter(job.queue for job in rest) == {"emails": 5 - counts["emails"]}


async def test_priorities_hold_across_queues(queue: Queue, backend: Backend) -> None:
    await queue.enqueue("a-low", queue="a", priority=Priority.LOW)
    await queue.enqueue("b-high", queue="b", priority=Priority.HIGH)
    claimed = await backend.claim({"a": 1, "b": 1}, limit=1, lease=30, worker_id="w")
    assert [job.type for job in claimed] == ["b-high"]


async def test_one_claim_serves_thousands_of_queues(queue: Queue, backend: Backend) -> None:
    """A worker may serve thousands of queues (SQLite caps a compound SELECT at 500 terms):
    one claim over 1,201 of them takes the best jobs of all, in priority order."""
    names = [f"q{n}" for n in range(1201)]
    for name, priority in (
        ("q0", Priority.LOW),
        ("q600", Priority.HIGH),
        ("q1200", Priority.NORMAL),
    ):
        await queue.enqueue(name, queue=name, priority=priority)
    claimed = await backend.claim(dict.fromkeys(names, 1), limit=3, lease=30, worker_id="w")
    assert [job.type for job in claimed] == ["q600", "q1200", "q0"]


async def test_concurrent_claimers_never_share_a_job(
    queue: Queue, backend: Backend, backend_setup: BackendSetup
) -> None:
    total = 2000
    await queue.enqueue_many(queuekit.new_job("t", {"n": n}) for n in range(total))
    clients = [backend] + [backend_setup.make() for _ in range(3)]
    for client in clients[1:]:
        await client.open()
    seen: list[str] = []

    async def claimer(client: Backend, name: str) -> None:
        while True:
            jobs = await client.claim({"default": 7}, limit=7, lease=60, worker_id=name)
            if not jobs:
                return
            seen.extend(job.id for job in jobs)

    try:
        async with anyio.create_task_group() as group:
            for n in range(20):
                group.start_soon(claimer, clients[n % len(clients)], f"claimer-{n}")
    finally:
        for client in clients[1:]:
            await client.close()
    assert len(seen) == total
    assert len(set(seen)) == total


async def test_wait_for_work_wakes_on_enqueue(queue: Queue, backend: Backend) -> None:
    woke_after: list[float] = []

    async def waiter() -> None:
        started = time.monotonic()
        await backend.wait_for_work(["default"], timeout=10)
        woke_after.append(time.monotonic() - started)

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await anyio.sleep(0.1)
        await queue.enqueue("t")
    assert woke_after and woke_after[0] < 5


async def test_wait_for_work_returns_when_a_delayed_job_is_due(
    queue: Queue, backend: Backend
) -> None:
    await queue.enqueue("t", delay=0.3)
    started = time.monotonic()
    with anyio.fail_after(10):
        while not await claim(backend):
            await backend.wait_for_work(["default"], timeout=10)
    assert time.monotonic() - started < 5


async def test_a_task_cancelled_while_it_waits_for_work_always_ends(backend: Backend) -> None:
    """`Task.cancel` on a task waiting for work (a worker's, say, run by `asyncio.create_task`)
    ends it, whenever it comes: redis-py can swallow a cancellation that comes as a reply
    arrives, so the Redis backend must not hand the caller's to it, and Python 3.11's
    `asyncio.wait_for` one that comes as the awaited event is set (PostgreSQL's first wait, for
    its LISTEN connection, lost one so). The cancels sweep a short wait's length."""

    async def wait_again_and_again() -> None:
        while True:
            await backend.wait_for_work(["default"], timeout=0.01)

    for step in range(300):
        waiting = asyncio.create_task(wait_again_and_again())
        await asyncio.sleep(step % 30 / 2000)
        waiting.cancel()
        # A swallowed cancel leaves it waiting for ever; a delivered one ends it at once.
        done, _ = await asyncio.wait([waiting], timeout=10)
        assert done, f"a cancel after {step % 30 / 2} ms was swallowed"
        assert waiting.cancelled()

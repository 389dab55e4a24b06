"""Conformance: listing with filters and paging, queues, and stats."""

from __future__ import annotations

import anyio

import queuekit
from queuekit import Backend, JobStatus, Queue
from queuekit.stats import READY_AGE_TARGET_SECONDS, QueueCounts, QueueStats

from .helpers import claim, claim_one


async def test_list_jobs_newest_first_with_paging(queue: Queue) -> None:
    jobs = await queue.enqueue_many(queuekit.new_job("t", {"n": n}) for n in range(25))
    newest_first = [job.id for job in reversed(jobs)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await queue.list_jobs(limit=10, cursor=cursor)
        seen += [job.id for job in page.jobs]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == newest_first
    assert pages == 3


async def test_list_jobs_filters_by_queue_and_status(queue: Queue, backend: Backend) -> None:
    await queue.enqueue_many(queuekit.new_job("t", queue="a") for _ in range(4))
    await queue.enqueue_many(queuekit.new_job("t", queue="b") for _ in range(3))
    await claim(backend, 2, queue="a")
    assert len((await queue.list_jobs(queue="a")).jobs) == 4
    running = await queue.list_jobs(status=JobStatus.RUNNING)
    assert len(running.jobs) == 2 and {job.queue for job in running.jobs} == {"a"}
    pending_b = await queue.list_jobs(queue="b", status="pending")
    assert len(pending_b.jobs) == 3
    assert (await queue.list_jobs(queue="b", status=JobStatus.DEAD)).jobs == []


async def test_list_jobs_lists_dead_jobs(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=1)
    running = await claim_one(backend)
    await backend.fail(running.attempt, "boom", retry_in=None)
    dead = await queue.list_jobs(status=JobStatus.DEAD)
    assert [d.id for d in dead.jobs] == [job.id]


async def test_list_queues_includes_queues_with_only_finished_jobs(
    queue: Queue, backend: Backend
) -> None:
    await queue.enqueue("t", queue="zeta")
    await queue.enqueue("t", queue="alpha")
    done = await claim_one(backend, queue="alpha")
    await backend.complete(done.attempt)
    assert await queue.list_queues() == ["alpha", "zeta"]


async def test_stats_counts_every_state(queue: Queue, backend: Backend) -> None:
    q = "stats"
    await queue.enqueue_many(queuekit.new_job("t", queue=q, max_attempts=1) for _ in range(6))
    await queue.enqueue("t", queue=q, delay=3600)
    first, second, third, fourth = await claim(backend, 4, queue=q)
    await backend.complete(first.attempt)
    await backend.complete(second.attempt)
    await backend.fail(third.attempt, "boom", retry_in=None)
    cancelled = await queue.enqueue("t", queue=q)
    await queue.cancel(cancelled.id)
    await anyio.sleep(0.05)
    stats = await queue.stats(q)
    assert (stats.pending, stats.scheduled, stats.ready) == (3, 1, 2)
    assert (stats.running, stats.completed, stats.dead, stats.cancelled) == (1, 2, 1, 1)
    assert stats.failed == 0 and stats.total == 8
    assert stats.oldest_ready_age is not None and stats.oldest_ready_age >= 0.05
    assert stats.success_rate == 2 / 3
    assert stats.health == round(100 * 2 / 3)
    assert fourth.status == JobStatus.RUNNING


async def test_stats_of_an_empty_queue(queue: Queue) -> None:
    stats = await queue.stats("nothing-here")
    assert stats.total == 0 and stats.oldest_ready_age is None
    assert stats.success_rate is None and stats.health == 100


async def test_stats_see_expired_leases(queue: Queue, backend: Backend) -> None:
    await queue.enqueue_many(queuekit.new_job("t") for _ in range(2))
    await claim_one(backend, lease=0.05)
    await claim_one(backend, lease=60)
    await anyio.sleep(0.1)
    stats = await queue.stats()
    assert stats.running == 2 and stats.health == 50


def test_health_ignores_the_wait_of_a_paused_queue() -> None:
    waiting = QueueCounts(pending=3, oldest_ready_age=10 * READY_AGE_TARGET_SECONDS)
    assert QueueStats.from_counts("q", waiting).health == 10
    assert QueueStats.from_counts("q", waiting, paused=True).health == 100
    expired = QueueCounts(running=2, expired_leases=1, oldest_ready_age=600.0)
    assert QueueStats.from_counts("q", expired, paused=True).health == 50

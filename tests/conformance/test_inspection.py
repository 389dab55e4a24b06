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


async def test_stats_tell_scheduled_from_due_at_every_priority(
    queue: Queue, backend: Backend
) -> None:
    q = "horizons"
    oldest = await queue.enqueue("t", queue=q, priority=1)
    await anyio.sleep(0.05)
    await queue.enqueue_many(queuekit.new_job("t", queue=q, priority=p) for p in (5, 500))
    later = await queue.enqueue_many(
        queuekit.new_job("t", queue=q, delay=delay, priority=priority)
        for delay, priority in ((30, 1), (90, 5), (3600, 500), (86400, 1))
    )
    stats = await queue.stats(q)
    assert (stats.pending, stats.scheduled, stats.ready) == (7, 4, 3)
    assert stats.oldest_ready_age is not None and stats.oldest_ready_age >= 0.05

    # A retry waits as a delayed job does; run_now makes a job due; a cancel takes one away.
    first = await claim_one(backend, queue=q)
    assert first.priority == 500
    await backend.fail(first.attempt, "boom", retry_in=600)
    await queue.run_now(later[3].id)
    await queue.cancel(later[0].id)
    stats = await queue.stats(q)
    assert (stats.pending, stats.failed, stats.scheduled, stats.ready) == (5, 1, 3, 3)
    assert (stats.cancelled, stats.total) == (1, 7)
    # Only the low-priority job enqueued first is as old as that.
    await queue.cancel(oldest.id)
    stats = await queue.stats(q)
    assert stats.oldest_ready_age is not None and stats.oldest_ready_age < 600


async def test_stats_agree_with_the_jobs_after_every_kind_of_change(
    queue: Queue, backend: Backend
) -> None:
    """Counts kept as jobs change (the SQL backends' `stats`) must end where counting the jobs
    does, whichever ways they changed."""
    names = ["mix-a", "mix-b"]
    for name in names:
        await queue.enqueue_many(
            queuekit.new_job("t", queue=name, max_attempts=2, priority=n % 3) for n in range(12)
        )
        await queue.enqueue_many(
            queuekit.new_job("t", queue=name, delay=60 * (n + 1)) for n in range(3)
        )
    done, dead, retried, left_running = await claim(backend, 4, queue="mix-a")
    await backend.complete(done.attempt)
    await backend.fail(dead.attempt, "boom", retry_in=None)
    await backend.fail(retried.attempt, "boom", retry_in=0)
    assert left_running.status == JobStatus.RUNNING
    await queue.replay(dead.id)
    (again,) = await claim(backend, 1, queue="mix-a")
    await backend.complete(again.attempt)
    assert await queue.delete_job(done.id)
    parent = await queue.enqueue("t", queue="mix-a", delay=3600)
    await queue.enqueue_many(queuekit.new_job("t", queue="mix-a", after=[parent]) for _ in "ab")
    finished = await claim(backend, 2, queue="mix-b")
    for job in finished:
        await backend.complete(job.attempt)
    await queue.cancel_all(queue="mix-b", status=JobStatus.PENDING, type="t")
    await queue.replay_all(queue="mix-b")
    await queue.run_now_all(queue="mix-b")
    await queue.cancel(finished[0].id)  # finished already: left alone
    (cancelled, _) = (await queue.list_jobs(queue="mix-b", status=JobStatus.PENDING)).jobs[:2]
    await queue.cancel(cancelled.id)
    await queue.delete_all(queue="mix-b", status=JobStatus.COMPLETED)
    for name in names:
        stats = await queue.stats(name)
        for status in JobStatus:
            jobs = await queue.list_jobs(queue=name, status=status, limit=1000)
            assert getattr(stats, status.value) == len(jobs.jobs), (name, status)

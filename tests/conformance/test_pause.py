"""Conformance: pausing and resuming queues."""

from __future__ import annotations

import anyio
import pytest

import queuekit
from queuekit import Backend, InvalidNameError, JobStatus, Queue

from .helpers import WORKER, claim


async def test_claims_skip_a_paused_queue_and_resume_restores(
    queue: Queue, backend: Backend
) -> None:
    await queue.enqueue("t", queue="a")
    await queue.pause("a")
    later = await queue.enqueue("t", queue="a")  # a paused queue still takes jobs
    assert later.status == JobStatus.PENDING
    assert await claim(backend, 5, queue="a") == []
    stats = await queue.stats("a")
    assert stats.paused and stats.pending == 2
    await queue.resume("a")
    assert not (await queue.stats("a")).paused
    assert len(await claim(backend, 5, queue="a")) == 2


async def test_pausing_one_queue_leaves_the_others(queue: Queue, backend: Backend) -> None:
    await queue.enqueue_many(
        [queuekit.new_job("t", queue="a"), queuekit.new_job("t", queue="b", priority=0)]
    )
    await queue.pause("a")
    claimed = await backend.claim({"a": 5, "b": 5}, limit=5, lease=30, worker_id=WORKER)
    assert [job.queue for job in claimed] == ["b"]
    assert await queue.paused_queues() == {"a"}
    assert not (await queue.stats("b")).paused


async def test_pause_and_resume_are_idempotent(queue: Queue, backend: Backend) -> None:
    await queue.resume("never-paused")
    await queue.pause("a")
    await queue.pause("a")
    assert await queue.paused_queues() == {"a"}
    await queue.resume("a")
    await queue.resume("a")
    assert await queue.paused_queues() == set()
    await queue.enqueue("t", queue="a")
    assert len(await claim(backend, queue="a")) == 1


async def test_a_paused_queue_is_listed_even_without_jobs(queue: Queue) -> None:
    await queue.enqueue("t", queue="b")
    await queue.pause("a")
    assert await queue.list_queues() == ["a", "b"]
    await queue.resume("a")
    assert await queue.list_queues() == ["b"]


async def test_a_paused_queue_with_due_jobs_lets_waiters_sleep(
    queue: Queue, backend: Backend
) -> None:
    await queue.enqueue("t", queue="a")
    await queue.pause("a")
    # Due jobs of a paused queue must not make an idle worker spin: after at most a few
    # wake-ups left over from the enqueue (Redis keeps some), a wait lasts its timeout.
    waits = []
    with anyio.fail_after(10):
        for _ in range(20):
            started = anyio.current_time()
            await backend.wait_for_work(["a"], timeout=0.2)
            waits.append(anyio.current_time() - started)
            if waits[-1] >= 0.15:
                break
    assert waits[-1] >= 0.15, waits


async def test_delayed_jobs_of_a_paused_queue_wait_for_the_resume(
    queue: Queue, backend: Backend
) -> None:
    await queue.enqueue("t", queue="a", delay=0.05)
    await queue.pause("a")
    await anyio.sleep(0.1)
    assert await claim(backend, queue="a") == []
    await queue.resume("a")
    assert len(await claim(backend, queue="a")) == 1


@pytest.mark.parametrize("name", ["", "has space", "x" * 129, "semi;colon"])
async def test_bad_queue_names_are_refused(queue: Queue, name: str) -> None:
    with pytest.raises(InvalidNameError):
        await queue.pause(name)
    with pytest.raises(InvalidNameError):
        await queue.resume(name)
    assert await queue.paused_queues() == set()

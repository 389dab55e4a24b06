"""Conformance: `wait_for_loss` wakes the holder of a running job that is cancelled, one at a
time or in bulk, long before its timeout; and it never waits past its timeout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest
from anyio.abc import TaskStatus

import queuekit
from queuekit import Backend, Job, Queue

from ..waiting import DEADLINE
from .helpers import claim_one

NEVER = 3600.0
"""A timeout no test waits out: only a push (or the push's connection coming up) ends it."""


async def _settle(queue: Queue, backend: Backend, name: str = "default") -> None:
    """Return once a cancel in queue `name` reaches a waiter: the backend's means of being told
    (a LISTEN, a subscription to the queue's channel) are up. A wait's first wake-up may be
    their coming up rather than the cancel: waiting again until the heartbeat finds the loss
    covers both."""
    job = await queue.enqueue("warm-up", queue=name)
    claimed = await claim_one(backend, queue=name, lease=NEVER)
    assert claimed.id == job.id
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as group:

            async def watch(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
                # Waiting first brings the means of being told up, whenever the cancel lands.
                task_status.started()
                await backend.wait_for_loss([claimed], NEVER)
                while not await backend.heartbeat([claimed.attempt], lease=NEVER):
                    await backend.wait_for_loss([claimed], NEVER)

            await group.start(watch)
            await queue.cancel(job.id)


async def _woken_by(
    backend: Backend, held: list[Job], act: Callable[[], Awaitable[object]]
) -> float:
    """Wait for the loss of `held` while `act` runs; the seconds from `act` to a wake-up whose
    heartbeat finds a job lost. A wake-up that finds none (a subscription coming up) waits
    again. `act` runs once the wait is starting, not once every task is idle: a backend that
    polls (a Cluster's subscription reads its nodes in turn) is never idle for long. A cancel
    that lands before the wait is heard by it all the same (see below)."""
    attempts = [job.attempt for job in held]
    woken_at = 0.0

    async def watch(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        nonlocal woken_at
        task_status.started()
        while True:
            await backend.wait_for_loss(held, NEVER)
            if await backend.heartbeat(attempts, lease=NEVER):
                woken_at = anyio.current_time()
                return

    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as group:
            await group.start(watch)
            acted_at = anyio.current_time()
            await act()
    return woken_at - acted_at


async def test_a_cancel_wakes_the_holder(queue: Queue, backend: Backend) -> None:
    other = await queue.enqueue("t")
    job = await queue.enqueue("t")
    held = [await claim_one(backend, lease=NEVER), await claim_one(backend, lease=NEVER)]
    assert {j.id for j in held} == {other.id, job.id}
    await _settle(queue, backend)
    latency = await _woken_by(backend, held, lambda: queue.cancel(job.id))
    assert latency < DEADLINE
    print(f"{type(backend).__name__}: cancel woke the holder after {latency * 1000:.1f} ms")
    assert await backend.heartbeat([j.attempt for j in held], lease=30) == {
        j.attempt for j in held if j.id == job.id
    }


async def test_a_bulk_cancel_wakes_the_holder(queue: Queue, backend: Backend) -> None:
    await queue.enqueue("t", queue="bulk")
    held = [await claim_one(backend, queue="bulk", lease=NEVER)]
    await _settle(queue, backend, "bulk")
    latency = await _woken_by(backend, held, lambda: queue.cancel_all(queue="bulk"))
    assert latency < DEADLINE


async def test_a_job_of_a_queue_first_waited_on_later_is_covered(
    queue: Queue, backend: Backend
) -> None:
    await queue.enqueue("t", queue="first")
    first = await claim_one(backend, queue="first", lease=NEVER)
    await _settle(queue, backend, "first")
    job = await queue.enqueue("t", queue="second")
    held = [first, await claim_one(backend, queue="second", lease=NEVER)]
    latency = await _woken_by(backend, held, lambda: queue.cancel(job.id))
    assert latency < DEADLINE


@pytest.mark.parametrize("how", ["cancel", "cancel_all"])
async def test_a_cancel_just_before_the_wait_is_heard(
    queue: Queue, backend: Backend, how: str
) -> None:
    """A worker waits on a job only once its claim has returned: a cancel in between (here,
    before the wait starts at all) still wakes that wait."""
    await queue.enqueue("t")
    first = await claim_one(backend, lease=NEVER)
    await _settle(queue, backend)
    job = await queue.enqueue("u")
    held = [first, await claim_one(backend, lease=NEVER)]
    if how == "cancel":
        await queue.cancel(job.id)
    else:
        await queue.cancel_all(type="u")
    with anyio.fail_after(DEADLINE):
        await backend.wait_for_loss(held, NEVER)
    assert await backend.heartbeat([a.attempt for a in held], lease=NEVER) == {held[1].attempt}
    # Heard once: the next wait is not woken by it again.
    with anyio.move_on_after(0.2) as scope:
        await backend.wait_for_loss([first], NEVER)
    assert scope.cancelled_caught


async def test_a_job_ending_otherwise_wakes_nobody(queue: Queue, backend: Backend) -> None:
    """Completions, failures and snoozes are the holder's own doing: no wake-up, no heartbeat."""
    await queue.enqueue_many([queuekit.new_job("t") for _ in range(4)])
    held = [await claim_one(backend, lease=NEVER) for _ in range(4)]
    await _settle(queue, backend)

    async def wait(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await backend.wait_for_loss(held, NEVER)

    with anyio.move_on_after(0.5) as scope:
        async with anyio.create_task_group() as group:
            await group.start(wait)
            await backend.complete(held[0].attempt)
            await backend.fail(held[1].attempt, "E: x", retry_in=None)
            await backend.fail(held[2].attempt, "E: y", retry_in=60)
            await backend.snooze(held[3].attempt, 60)
    assert scope.cancelled_caught


async def test_the_wait_ends_at_its_timeout(queue: Queue, backend: Backend) -> None:
    await queue.enqueue("t")
    held = [await claim_one(backend, lease=NEVER)]
    with anyio.fail_after(DEADLINE):
        for _ in range(3):
            await backend.wait_for_loss(held, 0.05)
    assert await backend.heartbeat([held[0].attempt], lease=30) == set()

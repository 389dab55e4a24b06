"""Workers under queue limits: several workers share one limit, and `RateLimited` holds a key."""

from __future__ import annotations

import anyio
import pytest

import queuekit
from queuekit import JobStatus, Limits, Queue, RateLimited, Tasks, Worker
from queuekit.errors import InvalidOptionError

from ..setups import BackendSetup
from ..waiting import eventually
from .options import FAST


async def test_workers_together_keep_to_the_queue_limit(
    queue: Queue, backend_setup: BackendSetup
) -> None:
    """Three workers of five slots each, a limit of two: never more than two run at once."""
    tasks = Tasks()
    running = peak = 0

    @tasks.task(limit_key="account")
    async def charge(account: str) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        running -= 1

    await queue.set_limits("default", Limits(concurrency=2))
    jobs = [await charge.enqueue(queue, f"acct-{n % 4}") for n in range(30)]
    assert {job.limit_key for job in jobs} == {"acct-0", "acct-1", "acct-2", "acct-3"}
    others = [queuekit.Queue(backend_setup.make()) for _ in range(2)]
    async with (
        others[0],
        others[1],
        Worker(queue, tasks, concurrency=5, **FAST),
        Worker(others[0], tasks, concurrency=5, **FAST),
        Worker(others[1], tasks, concurrency=5, **FAST),
    ):
        for job in jobs:
            await queue.result(job.id, timeout=60)
    assert peak <= 2


async def test_rate_limited_holds_the_key_for_the_fleet(queue: Queue) -> None:
    tasks = Tasks()
    calls: list[str] = []

    @tasks.task(limit_key="account")
    async def call_api(account: str) -> None:
        calls.append(account)
        if account == "slow":
            raise RateLimited(after=3600)

    await queue.set_limits("default", Limits(per_key=5))
    slow = await call_api.enqueue(queue, "slow")
    async with Worker(queue, tasks, **FAST):

        async def held() -> bool:
            return "slow" in (await queue.limit_usage("default")).held_keys

        await eventually(held, "the slow key is held")
        later = await call_api.enqueue(queue, "slow")
        fine = await call_api.enqueue(queue, "fine")
        assert await queue.result(fine.id, timeout=30) is None
        await anyio.sleep(3 * FAST["poll_interval"])  # the held key's job stays where it is
    assert calls.count("slow") == 1
    snoozed = await queue.get_job(slow.id)
    assert snoozed.status == JobStatus.PENDING and snoozed.attempts == 0
    assert (await queue.get_job(later.id)).status == JobStatus.PENDING


async def test_rate_limited_without_a_key_holds_the_queue(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task()
    async def call_api() -> None:
        raise RateLimited(after=3600)

    await queue.enqueue("call_api")
    async with Worker(queue, tasks, **FAST):

        async def held() -> bool:
            return (await queue.limit_usage("default")).held_until is not None

        await eventually(held, "the queue is held")


def test_a_task_limit_key_must_name_an_argument() -> None:
    tasks = Tasks()
    with pytest.raises(InvalidOptionError, match="tenant"):

        @tasks.task(limit_key="tenant")
        async def work(account: str) -> None: ...

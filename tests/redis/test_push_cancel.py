"""Redis pushes cancels over the backend's one sharded subscription; when its connection is
lost, the waiters are woken once it is back (a cancel published meanwhile was not heard), and
cancels are pushed again."""

from __future__ import annotations

import anyio
import redis.asyncio as aioredis

import queuekit
from queuekit.backends.redis import RedisBackend

from ..waiting import DEADLINE, eventually
from .server import subscribers

NEVER = 3600.0


async def test_one_subscription_serves_every_wait(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    jobs = [queuekit.new_job("t", queue=f"q{n % 3}") for n in range(30)]
    await redis_backend.enqueue_many(jobs)
    held = await redis_backend.claim(
        {f"q{n}": 10 for n in range(3)}, limit=30, lease=NEVER, worker_id="w"
    )
    ours: dict[str, int] = {}

    async def subscribed() -> bool:
        ours.clear()
        ours.update(await subscribers(raw, redis_backend))
        return sum(ours.values()) == 3

    async with anyio.create_task_group() as group:
        for job in held:
            group.start_soon(redis_backend.wait_for_loss, [job], NEVER)
        await eventually(subscribed, "the three queues' channels were subscribed")
        group.cancel_scope.cancel()
    assert list(ours.values()) == [3], "one connection for every wait and queue"


async def test_a_lost_subscription_wakes_the_holder_and_pushes_again(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    await redis_backend.enqueue_many([queuekit.new_job("t"), queuekit.new_job("t")])
    held = await redis_backend.claim({"default": 2}, limit=2, lease=NEVER, worker_id="w")
    await redis_backend.wait_for_loss(held, DEADLINE)  # woken once subscribed
    (ours,) = await subscribers(raw, redis_backend)
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as group:
            group.start_soon(redis_backend.wait_for_loss, held, NEVER)
            await anyio.wait_all_tasks_blocked()
            await raw.client_kill_filter(_id=ours)
    # Woken when the subscription came back, long before NEVER.
    woken = anyio.Event()

    async def wait() -> None:
        await redis_backend.wait_for_loss(held, NEVER)
        woken.set()

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        await redis_backend.cancel(held[0].id)
        await eventually(lambda: woken.is_set(), "the cancel was pushed on the new connection")
    assert await redis_backend.heartbeat([job.attempt for job in held], lease=30) == {
        held[0].attempt
    }

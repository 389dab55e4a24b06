"""Redis events travel on one sharded subscription, held only while this process has
subscribers; a lost connection is a gap (`dropped`), and the subscription comes back."""

from __future__ import annotations

import anyio
import redis.asyncio as aioredis

from queuekit import Queue
from queuekit.backends.redis import RedisBackend
from queuekit.events import Event, EventKind

from ..waiting import DEADLINE, eventually
from .server import subscribers


async def _subscribed(raw: aioredis.Redis, channel: str) -> int:
    """How many connections subscribe to the sharded `channel`."""
    counts = await raw.pubsub_shardnumsub(channel)
    return int(counts[0][1])


async def test_a_lost_subscription_is_a_gap_and_subscribing_goes_on(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    channel = redis_backend._keys.events
    assert await _subscribed(raw, channel) == 0  # nobody subscribes: nobody listens
    async with Queue(redis_backend).events() as stream:
        assert await _subscribed(raw, channel) == 1
        (ours,) = await subscribers(raw, redis_backend)
        await raw.client_kill_filter(_id=ours)
        with anyio.fail_after(DEADLINE):
            assert await anext(stream) == Event(EventKind.DROPPED)  # how many: unknown
            await redis_backend.publish_events([Event(EventKind.ENQUEUED, "q", "id", "t")])
            assert await anext(stream) == Event(EventKind.ENQUEUED, "q", "id", "t")

    async def unsubscribed() -> bool:
        return await _subscribed(raw, channel) == 0

    await eventually(unsubscribed, "the last subscriber left: the subscription stopped")

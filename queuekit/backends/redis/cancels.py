"""`CancelFeed`: one sharded subscription per backend to its queues' cancel channels, which
wakes the workers waiting in `wait_for_loss` by job id."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ...job import Job
from ..losses import LossWaiters
from ..waiters import wait_at_most
from .calls import RedisCalls
from .keys import Keys
from .subscription import ShardedSubscription

CHANNEL = "cancels"
"""The queue key (`{<prefix>:<queue>}:cancels`) cancel scripts SPUBLISH a running job's id on."""
CLUSTER_READ_SECONDS = 0.05
"""On a Cluster, the longest read of one node's subscription (the cancel channels of several
queues are on several nodes): a cancel waits out the reads of the other nodes, at most this
much each."""


class CancelFeed:
    """Subscribes to the cancel channel of every queue a waiter has jobs of, and keeps those
    subscriptions while open.

    A waiter registers under its job ids and its queues' channels: a published id wakes the
    waiters of that job, and a channel's subscription coming up, the first time or after the
    connection was lost and made again, wakes the waiters of that queue, since a cancel
    published before it was not heard. While the connection is down, waiters wait out their
    timeout (the heartbeat's cadence)."""

    def __init__(self, calls: RedisCalls, keys: Keys) -> None:
        self._keys = keys
        self._waiters = LossWaiters()
        self._subscription = ShardedSubscription(
            calls, "cancels", self._on_cancel, self._on_subscribed, CLUSTER_READ_SECONDS
        )

    async def wait(self, jobs: Sequence[Job], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        channels = {self._keys.of_queue(job.queue, CHANNEL) for job in jobs}
        with self._waiters.registered([*(job.id for job in jobs), *channels]) as event:
            await self._subscription.add(channels)
            await wait_at_most(event, deadline - loop.time())

    async def close(self) -> None:
        await self._subscription.close()

    def _on_cancel(self, _channel: str, job_id: str) -> None:
        self._waiters.wake([job_id])

    def _on_subscribed(self, channel: str) -> None:
        self._waiters.wake([channel])

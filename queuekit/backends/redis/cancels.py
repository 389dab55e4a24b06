"""`CancelFeed`: one sharded subscription per backend to its queues' cancel channels, which
wakes the workers waiting in `wait_for_loss` by job id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub

from ...job import Job
from ..losses import LossWaiters
from ..waiters import wait_at_most
from .calls import RedisCalls
from .keys import Keys
from .replies import text

log = logging.getLogger("queuekit.redis")

CHANNEL = "cancels"
"""The queue key (`{<prefix>:<queue>}:cancels`) cancel scripts SPUBLISH a running job's id on."""
PING_SECONDS = 30.0
"""An idle subscription is checked this often, so a silently dead one is replaced."""
CLUSTER_READ_SECONDS = 0.05
"""On a Cluster, the longest read of one node's subscription: redis-py reads the nodes in
turn, each up to the timeout given, so a cancel published on one node waits out the reads of
the others (at most this much each)."""
RECONNECT_MIN, RECONNECT_MAX = 0.1, 5.0
"""Backoff bounds, in seconds, between attempts to subscribe again."""


class CancelFeed:
    """Subscribes (SSUBSCRIBE, on one connection, or one per node of a Cluster) to the cancel
    channel of every queue a waiter has jobs of, and keeps those subscriptions while open.

    A waiter registers under its job ids and its queues' channels: a published id wakes the
    waiters of that job, and a channel's subscription coming up, the first time or after the
    connection was lost and made again, wakes the waiters of that queue, since a cancel
    published before it was not heard. While the connection is down, waiters wait out their
    timeout (the heartbeat's cadence)."""

    def __init__(self, calls: RedisCalls, keys: Keys) -> None:
        self._calls = calls
        self._keys = keys
        self._waiters = LossWaiters()
        self._wanted: set[str] = set()
        self._pubsub: PubSub | None = None
        """The subscription, once its connection is up."""
        self._task: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()

    async def wait(self, jobs: Sequence[Job], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        channels = {self._keys.of_queue(job.queue, CHANNEL) for job in jobs}
        with self._waiters.registered([*(job.id for job in jobs), *channels]) as event:
            new = channels - self._wanted
            if new:
                self._wanted |= new
                await self._subscribe(new)
            await wait_at_most(event, deadline - loop.time())

    async def _subscribe(self, channels: set[str]) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._read_forever())
            return
        pubsub = self._pubsub
        if pubsub is None:
            return  # reconnecting: it subscribes to every wanted channel once back
        try:
            async with self._sending:
                await pubsub.ssubscribe(*channels)
        except Exception as exc:
            # The reader sees the lost connection too, and subscribes again once it is back.
            log.debug("SSUBSCRIBE failed: %s", exc)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._wanted.clear()

    async def _read_forever(self) -> None:
        """Hold the subscription; when its connection drops, subscribe again with backoff."""
        delay = RECONNECT_MIN
        while True:
            pubsub: PubSub | None = None
            try:
                pubsub = self._calls.opened().blocking.pubsub()
                sent = set(self._wanted)
                await pubsub.ssubscribe(*sent)
                self._pubsub = pubsub
                if late := self._wanted - sent:
                    await pubsub.ssubscribe(*late)
                while True:
                    message = await _next_message(pubsub)
                    delay = RECONNECT_MIN
                    if message is None:
                        if not isinstance(pubsub, ClusterPubSub):
                            async with self._sending:
                                await pubsub.ping()
                        continue
                    await self._on_message(pubsub, text(message))
            except Exception as exc:
                log.warning(
                    "subscription to cancels lost (%s: %s); subscribing again in %.1f s",
                    type(exc).__name__,
                    exc,
                    delay,
                )
            finally:
                self._pubsub = None
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    async def _on_message(self, pubsub: PubSub, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if kind == "smessage":
            self._waiters.wake([message["data"]])
        elif kind == "ssubscribe":
            self._waiters.wake([channel])
        elif kind == "sunsubscribe" and channel in self._wanted:
            # A Cluster moved the channel's slot: follow it to its new node.
            async with self._sending:
                await pubsub.ssubscribe(channel)


async def _next_message(pubsub: PubSub) -> dict[str, Any] | None:
    """The next message of any of the subscribed channels, or None after `PING_SECONDS` (a
    Cluster: after `CLUSTER_READ_SECONDS` on each node)."""
    if isinstance(pubsub, ClusterPubSub):
        return await pubsub.get_sharded_message(timeout=CLUSTER_READ_SECONDS)
    message: dict[str, Any] | None = await pubsub.get_message(timeout=PING_SECONDS)
    return message

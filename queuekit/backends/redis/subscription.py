"""`ShardedSubscription`: a sharded pub/sub subscription to a growing set of channels, held
across lost connections (the cancel feed's and the event feed's)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub

from .calls import RedisCalls
from .replies import text

log = logging.getLogger("queuekit.redis")

PING_SECONDS = 30.0
"""An idle subscription is checked this often, so a silently dead one is replaced."""
RECONNECT_MIN, RECONNECT_MAX = 0.1, 5.0
"""Backoff bounds, in seconds, between attempts to subscribe again."""


class ShardedSubscription:
    """SSUBSCRIBEs to `channels` (on one connection, or one per node of a Cluster), from the
    first `add` until `close`. After a lost connection it subscribes again with backoff; a
    channel whose Cluster slot moved is followed to its new node.

    Each message is given to `on_message(channel, data)`, and each channel's subscription
    coming up, the first time or again, to `on_subscribed(channel)`: what was published
    before that was not heard. On a Cluster, redis-py reads the nodes in turn, each for up to
    `cluster_read` seconds, so a message on one node waits out the reads of the others.
    """

    def __init__(
        self,
        calls: RedisCalls,
        what: str,
        on_message: Callable[[str, str], None],
        on_subscribed: Callable[[str], None],
        cluster_read: float = PING_SECONDS,
    ) -> None:
        self._calls = calls
        self._what = what
        """What the channels carry, for the log."""
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._cluster_read = cluster_read
        self.channels: set[str] = set()
        self._pubsub: PubSub | None = None
        """The subscription, once its connection is up."""
        self._task: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()
        """One command at a time on the subscription's connection (the reader pings it)."""

    async def add(self, channels: Iterable[str]) -> None:
        """Subscribe to `channels` too (it does not wait for the subscriptions to come up)."""
        new = set(channels) - self.channels
        if not new:
            return
        self.channels |= new
        if self._task is None:
            self._task = asyncio.create_task(self._read_forever())
            return
        pubsub = self._pubsub
        if pubsub is None:
            return  # reconnecting: it subscribes to every channel once back
        try:
            async with self._sending:
                await pubsub.ssubscribe(*new)
        except Exception as exc:
            # The reader sees the lost connection too, and subscribes again once it is back.
            log.debug("SSUBSCRIBE failed: %s", exc)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.channels.clear()

    async def _read_forever(self) -> None:
        """Hold the subscription; when its connection drops, subscribe again with backoff."""
        delay = RECONNECT_MIN
        while True:
            pubsub: PubSub | None = None
            try:
                pubsub = self._calls.opened().blocking.pubsub()
                sent = set(self.channels)
                await pubsub.ssubscribe(*sent)
                self._pubsub = pubsub
                if late := self.channels - sent:
                    await pubsub.ssubscribe(*late)
                while True:
                    message = await self._next_message(pubsub)
                    delay = RECONNECT_MIN
                    if message is None:
                        if not isinstance(pubsub, ClusterPubSub):
                            async with self._sending:
                                await pubsub.ping()
                        continue
                    await self._on(pubsub, text(message))
            except Exception as exc:
                log.warning(
                    "subscription to %s lost (%s: %s); subscribing again in %.1f s",
                    self._what,
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

    async def _on(self, pubsub: PubSub, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if kind == "smessage":
            self._on_message(channel, message["data"])
        elif kind == "ssubscribe":
            self._on_subscribed(channel)
        elif kind == "sunsubscribe" and channel in self.channels:
            # A Cluster moved the channel's slot: follow it to its new node.
            async with self._sending:
                await pubsub.ssubscribe(channel)

    async def _next_message(self, pubsub: PubSub) -> dict[str, Any] | None:
        """The next message of any of the channels, or None after `PING_SECONDS` (a Cluster:
        after `cluster_read` on each node)."""
        if isinstance(pubsub, ClusterPubSub):
            return await pubsub.get_sharded_message(timeout=self._cluster_read)
        message: dict[str, Any] | None = await pubsub.get_message(timeout=PING_SECONDS)
        return message

"""`RedisEvents`: job events SPUBLISHed on the prefix's events channel, and `EventFeed`, the
one sharded subscription to it a backend holds while this process has subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub

from ...backend import Backend
from ...errors import BackendUnavailableError
from ...events import CHUNK_OVERHEAD, Event, EventHub, EventSink, decode_chunk, encode_chunks
from .calls import RedisCalls
from .keys import Keys
from .replies import text

log = logging.getLogger("queuekit.redis")

PUBLISH_BYTES = 64 * 1024 - CHUNK_OVERHEAD
"""Bytes of events per message: small messages keep a slow subscriber's buffers small."""
SUBSCRIBE_WAIT = 10.0
"""Seconds a first subscriber waits for the subscription to come up."""
PING_SECONDS = 30.0
"""An idle subscription is checked this often, so a silently dead one is replaced."""
RECONNECT_MIN, RECONNECT_MAX = 0.1, 5.0
"""Backoff bounds, in seconds, between attempts to subscribe again."""

_serials = itertools.count()


class EventFeed:
    """SSUBSCRIBEs to `channel` (on the Cluster node of its slot) and gives its events to
    `hub`; subscribed again after a lost connection, it tells every subscriber that events
    were lost."""

    def __init__(self, calls: RedisCalls, channel: str, hub: EventHub) -> None:
        self._calls = calls
        self._channel = channel
        self._hub = hub
        self._subscribed = asyncio.Event()
        self._subscriptions = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe, and wait for it the first time (`BackendUnavailableError` if it does
        not come up in `SUBSCRIBE_WAIT` seconds)."""
        if self._task is None:
            self._task = asyncio.create_task(self._read_forever())
        if self._subscriptions == 0:
            try:
                await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_WAIT)
            except TimeoutError:
                raise BackendUnavailableError("cannot subscribe to events on Redis") from None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _read_forever(self) -> None:
        delay = RECONNECT_MIN
        while True:
            pubsub: PubSub | None = None
            try:
                pubsub = self._calls.opened().blocking.pubsub()
                await pubsub.ssubscribe(self._channel)
                while True:
                    message = await _next_message(pubsub)
                    delay = RECONNECT_MIN
                    if message is None:
                        if not isinstance(pubsub, ClusterPubSub):
                            await pubsub.ping()
                        continue
                    await self._on_message(pubsub, text(message))
            except Exception as exc:
                log.warning(
                    "subscription to events lost (%s: %s); subscribing again in %.1f s",
                    type(exc).__name__,
                    exc,
                    delay,
                )
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    async def _on_message(self, pubsub: PubSub, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "smessage":
            self._hub.deliver(decode_chunk(message["data"]))
        elif kind == "ssubscribe":
            self._subscriptions += 1
            if self._subscriptions > 1:
                self._hub.gap()
            self._subscribed.set()
        elif kind == "sunsubscribe":
            # A Cluster moved the channel's slot: follow it to its new node.
            await pubsub.ssubscribe(self._channel)


async def _next_message(pubsub: PubSub) -> dict[str, Any] | None:
    """The next message, or None after `PING_SECONDS`."""
    if isinstance(pubsub, ClusterPubSub):
        return await pubsub.get_sharded_message(timeout=PING_SECONDS)
    message: dict[str, Any] | None = await pubsub.get_message(timeout=PING_SECONDS)
    return message


class RedisEvents(Backend):
    """`publish_events` SPUBLISHes chunks of events in one round trip (sharded pub/sub: on a
    Cluster only the node of the channel's slot carries them); `subscribe_events` starts the
    feed with the first subscriber and stops it with the last. Every process publishes."""

    _calls: RedisCalls
    _keys: Keys
    _event_feed: EventFeed | None = None

    def events_wanted(self) -> bool:
        return True

    async def publish_events(self, events: Sequence[Event]) -> None:
        chunks = encode_chunks(events, PUBLISH_BYTES, next(_serials))
        await self._calls.commands([("SPUBLISH", self._keys.events, chunk) for chunk in chunks])

    async def subscribe_events(self, sink: EventSink) -> None:
        self._calls.opened()
        hub = self.event_hub()
        hub.sinks.add(sink)
        if self._event_feed is None:
            self._event_feed = EventFeed(self._calls, self._keys.events, hub)
        try:
            with self._calls.guard():
                await self._event_feed.start()
        except BaseException:
            await self.unsubscribe_events(sink)
            raise

    async def unsubscribe_events(self, sink: EventSink) -> None:
        hub = self.event_hub()
        hub.sinks.discard(sink)
        if not hub.sinks:
            await self._stop_events()

    async def _stop_events(self) -> None:
        feed, self._event_feed = self._event_feed, None
        if feed is not None:
            await feed.close()

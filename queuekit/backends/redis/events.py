"""`RedisEvents`: job events SPUBLISHed on the prefix's events channel, and `EventFeed`, the
one sharded subscription to it a backend holds while this process has subscribers."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import Sequence

from ...backend import Backend
from ...errors import BackendUnavailableError
from ...events import (
    CHUNK_OVERHEAD,
    RELEASED,
    Event,
    EventHub,
    EventKind,
    EventSink,
    decode_chunk,
    encode_chunks,
)
from ..audience import Audience, gap_once_heard, wait_until_heard
from ..times import stored_time
from .calls import RedisCalls
from .keys import Keys
from .subscription import ShardedSubscription

PUBLISH_BYTES = 64 * 1024 - CHUNK_OVERHEAD
"""Bytes of events per message: small messages keep a slow subscriber's buffers small."""
SUBSCRIBE_WAIT = 10.0
"""Seconds a first subscriber waits for the subscription to come up."""

_serials = itertools.count()
logger = logging.getLogger("queuekit.events")


class EventFeed:
    """SSUBSCRIBEs to `channel` (on the Cluster node of its slot) and gives its events to
    `hub`; subscribed again after a lost connection, it tells every subscriber that events
    were lost."""

    def __init__(self, calls: RedisCalls, channel: str, hub: EventHub) -> None:
        self._channel = channel
        self._hub = hub
        self._subscribed = asyncio.Event()
        self._subscriptions = 0
        self._subscribed_at = 0.0
        """When (monotonic clock) the subscription last came up."""
        self._subscription = ShardedSubscription(
            calls, "events", self._on_events, self._on_subscribed
        )

    async def start(self) -> None:
        """Subscribe, and wait for it the first time (`BackendUnavailableError` if it does
        not come up in `SUBSCRIBE_WAIT` seconds), and until every publisher can know of it."""
        await self._subscription.add([self._channel])
        if self._subscriptions == 0:
            try:
                async with asyncio.timeout(SUBSCRIBE_WAIT):
                    await self._subscribed.wait()
            except TimeoutError:
                raise BackendUnavailableError("cannot subscribe to events on Redis") from None
        await wait_until_heard(self._subscribed_at)

    async def close(self) -> None:
        await self._subscription.close()

    def _on_events(self, _channel: str, chunk: str) -> None:
        self._hub.deliver(decode_chunk(chunk))

    def _on_subscribed(self, _channel: str) -> None:
        self._subscriptions += 1
        self._subscribed_at = time.monotonic()
        if self._subscriptions > 1:
            gap_once_heard(self._hub)
        self._subscribed.set()


class RedisEvents(Backend):
    """`publish_events` SPUBLISHes chunks of events in one round trip (sharded pub/sub: on a
    Cluster only the node of the channel's slot carries them); `subscribe_events` starts the
    feed with the first subscriber, `_stop_events` stops it with the last. Every process
    publishes."""

    _calls: RedisCalls
    _keys: Keys
    _event_feed: EventFeed | None = None

    @functools.cached_property
    def _audience(self) -> Audience:
        return Audience()

    def events_wanted(self) -> bool:
        return self._audience.may_hear()

    async def publish_events(self, events: Sequence[Event]) -> None:
        chunks = encode_chunks(events, PUBLISH_BYTES, next(_serials))
        sent_at = time.monotonic()
        heard_by = await self._calls.commands(
            [("SPUBLISH", self._keys.events, chunk) for chunk in chunks]
        )
        self._audience.found(any(int(subscribers) for subscribers in heard_by), sent_at)

    async def _publish_decided(self, decided: list[list[str]]) -> None:
        """Publish what scripts decided for the dependents of jobs they ended, replayed or
        deleted (`with_decided` in lua/_dependencies.lua): no `Queue` made those changes. Best
        effort, as every publish: a failure is logged, and the write it follows stands."""
        if not self.events_wanted():
            return
        events = [
            Event(
                EventKind(kind),
                queue,
                job_id,
                type,
                stored_time(at),
                int(attempts),
                note=RELEASED if kind == EventKind.ENQUEUED else None,
                error=error or None,
            )
            for kind, queue, job_id, type, at, attempts, error in decided
        ]
        try:
            await self.publish_events(events)
        except Exception as exc:
            logger.warning("%d events of dependents not published: %s", len(events), exc)

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

    async def _stop_events(self) -> None:
        feed, self._event_feed = self._event_feed, None
        if feed is not None:
            await feed.close()

"""`PostgresEvents`: job events as notifications on the table's events channel, listened to by
a connection of their own only while this process has subscribers."""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ...errors import BackendUnavailableError, InvalidOptionError
from ...events import CHUNK_OVERHEAD, Event, EventHub, EventSink, decode_chunk, encode_chunks
from ..audience import Audience, gap_once_heard, wait_until_heard
from .connections import Connection
from .listener import ChannelListener
from .listening import ListenConnections
from .statements import events_channel

NOTIFY_BYTES = 7999 - CHUNK_OVERHEAD
"""Bytes of events per notification: PostgreSQL refuses payloads of 8000 bytes or more.
(Migration 15's `_announce` chunks the events the triggers decide by the same limit.)"""

_serials = itertools.count()


class EventListener(ChannelListener):
    """Listens on the events channel and gives its events to `hub`, saying to publishers that
    it listens (`listen_events`); once back after losing its connection, it tells every
    subscriber that events were lost."""

    def __init__(self, channel: str, where: str, backend: PostgresEvents, hub: EventHub) -> None:
        super().__init__(channel, where, backend._listener_connect, backend._listener_release)
        self._hub = hub
        self._say_listening = backend._sql["listen_events"]
        self.listening_since = 0.0
        """When (monotonic clock) publishers could first find the connection listening."""

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if isinstance(payload, str):
            self._hub.deliver(decode_chunk(payload))

    async def _on_connected(self, conn: Connection) -> None:
        await conn.execute(self._say_listening, self._channel)
        self.listening_since = time.monotonic()

    def _on_listening(self) -> None:
        if self.connections > 1:
            gap_once_heard(self._hub)


class PostgresEvents(ListenConnections):
    """`publish_events` sends one NOTIFY per chunk of events, all in one statement, which
    also says whether any event listener holds the channel's lock; `subscribe_events` starts
    the listener with the first subscriber; `_stop_events` stops it with the last."""

    _event_listener: EventListener | None = None
    poll_only: bool
    event_hub: Callable[[], EventHub]
    unsubscribe_events: Callable[[EventSink], Coroutine[Any, Any, None]]
    """`Backend`'s, which stops the listener (`_stop_events`) with the last subscriber."""

    @functools.cached_property
    def _audience(self) -> Audience:
        return Audience()

    def events_wanted(self) -> bool:
        return self._audience.may_hear()

    async def publish_events(self, events: Sequence[Event]) -> None:
        chunks = encode_chunks(events, NOTIFY_BYTES, next(_serials))
        sent_at = time.monotonic()
        (published,) = await self._fetch("publish_events", events_channel(self.channel), chunks)
        self._audience.found(published["heard"], sent_at)

    async def subscribe_events(self, sink: EventSink) -> None:
        self._require_pool()
        if self.poll_only:
            raise InvalidOptionError(
                "events need a LISTEN connection, which this backend does not make (poll_only, "
                "or transaction-mode PgBouncer without listen_dsn): give it a listen_dsn"
            )
        hub = self.event_hub()
        hub.sinks.add(sink)
        listener = self._event_listener
        if listener is None:
            channel = events_channel(self.channel)
            listener = self._event_listener = EventListener(channel, self._where, self, hub)
        await listener.ensure(self._connect_timeout)
        if listener.connections == 0:
            await self.unsubscribe_events(sink)
            raise BackendUnavailableError(
                f"cannot LISTEN for events on PostgreSQL at {self._where}"
            )
        await wait_until_heard(listener.listening_since)

    async def _stop_events(self) -> None:
        listener, self._event_listener = self._event_listener, None
        if listener is not None:
            await listener.close()

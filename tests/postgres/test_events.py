"""PostgreSQL's events: on their own channel, LISTENed to only while someone subscribes; a
lost LISTEN connection gives its subscribers a `dropped` event once it is back."""

from __future__ import annotations

import anyio
import asyncpg
import pytest

from queuekit import InvalidOptionError, Queue
from queuekit.backends.postgres import PostgresBackend
from queuekit.backends.postgres.statements import events_channel
from queuekit.events import Event, EventKind

from ..waiting import DEADLINE
from .conftest import OpenBackend


async def _listening(dsn: str, channel: str) -> list[int]:
    """The server pids of the connections that say they LISTEN for events on `channel`, as
    publishers find them (queries.sql, `listen_events`)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT l.pid FROM pg_locks AS l"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
            " AND l.classid = hashtext('queuekit events')::oid AND l.objid = hashtext($1)::oid",
            channel,
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


async def test_a_lost_connection_is_a_gap_and_listening_goes_on(
    open_backend: OpenBackend, dsn: str
) -> None:
    backend: PostgresBackend = await open_backend()
    channel = events_channel(backend.channel)
    assert channel == f"{backend.channel}_events"
    assert await _listening(dsn, channel) == []  # nobody subscribes: nobody listens
    async with Queue(backend).events() as stream:
        (pid,) = await _listening(dsn, channel)
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()
        with anyio.fail_after(DEADLINE):
            assert await anext(stream) == Event(EventKind.DROPPED)  # how many: unknown
            await backend.publish_events([Event(EventKind.ENQUEUED, "q", "id", "t")])
            assert await anext(stream) == Event(EventKind.ENQUEUED, "q", "id", "t")
    assert await _listening(dsn, channel) == []  # the last subscriber left: it stopped


def test_a_long_channel_name_is_shortened() -> None:
    long = "s" * 30 + "." + "t" * 30
    assert len(events_channel(long).encode()) <= 63
    assert events_channel(long) != events_channel(long[:-1] + "u")


async def test_a_backend_that_does_not_listen_refuses_subscribers(
    open_backend: OpenBackend,
) -> None:
    backend = await open_backend(poll_only="true")
    with pytest.raises(InvalidOptionError, match="listen_dsn"):
        await Queue(backend).events().open()
    assert not backend.event_hub().sinks

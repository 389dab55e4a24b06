"""The benchmarks' I/O-bound job: `call` awaits one Redis PING, as a real job awaits a service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

import queuekit

tasks = queuekit.Tasks()
_pinger: Redis | None = None


@tasks.task()
async def call() -> None:
    await ping()


async def ping() -> None:
    """The job's work: one PING through the client of `pinging`."""
    assert _pinger is not None, "run `call` jobs inside `pinging(...)`"
    await _pinger.ping()


@asynccontextmanager
async def pinging(client: Redis) -> AsyncIterator[None]:
    """Within this block `call` jobs ping through `client`, closed at its end."""
    global _pinger
    _pinger = client
    try:
        yield
    finally:
        _pinger = None
        await client.aclose()

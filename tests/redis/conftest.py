"""Fixtures for the Redis-only tests: a store on the test server, and a raw client to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis

from queuekit.backends.redis import RedisBackend

from ..setups import BackendSetup
from .server import redis_store, require_redis_url


@pytest.fixture
async def store() -> AsyncIterator[BackendSetup]:
    async with redis_store() as setup:
        yield setup


@pytest.fixture
async def redis_backend(store: BackendSetup) -> AsyncIterator[RedisBackend]:
    backend = cast(RedisBackend, store.make())
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def raw() -> AsyncIterator[aioredis.Redis]:
    """A plain client to the test server, for looking at the keys behind a backend's back."""
    client = aioredis.Redis.from_url(require_redis_url(), decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()

"""Fixtures for the PostgreSQL-specific tests: a fresh schema per test, and clients on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from queuekit.backends.postgres import PostgresBackend

from ..setups import BackendSetup, postgres_setup, require_postgres_dsn
from .pgbouncer import stop_pgbouncer

OpenBackend = Callable[..., Awaitable[PostgresBackend]]


@pytest.fixture(scope="module", autouse=True)
def pgbouncer_per_module() -> Iterator[None]:
    """A PgBouncer lives only as long as the test module that started it."""
    yield
    stop_pgbouncer()


@pytest.fixture
def dsn() -> str:
    """The test server's DSN, without queuekit's options."""
    return require_postgres_dsn()


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[BackendSetup]:
    """A fresh schema on the test server (dropped afterwards), as a `BackendSetup`."""
    async with postgres_setup(tmp_path) as setup:
        yield setup


@pytest.fixture
async def open_backend(pg: BackendSetup) -> AsyncIterator[OpenBackend]:
    """Open clients of the test schema, with extra URL options; all closed at the end."""
    opened: list[PostgresBackend] = []

    async def open_one(**options: str) -> PostgresBackend:
        assert pg.url is not None
        url = pg.url + "".join(f"&queuekit_{name}={value}" for name, value in options.items())
        backend = PostgresBackend.from_url(url)
        await backend.open()
        opened.append(backend)
        return backend

    yield open_one
    for backend in opened:
        await backend.close()


@pytest.fixture
async def pg_backend(open_backend: OpenBackend) -> PostgresBackend:
    """One open client of the test schema."""
    return await open_backend()

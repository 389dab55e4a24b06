"""How the tests get a backend of each kind: one `BackendSetup` per backend name."""

from __future__ import annotations

import atexit
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from queuekit import Backend
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.sqlite import SQLiteBackend

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class BackendSetup:
    """One isolated store for one test: a URL for other processes, and a way to open clients."""

    name: str
    url: str | None
    """How another process reaches the same store; None for memory."""
    make: Callable[[], Backend]
    """A new, unopened client of the same store (memory returns its one instance)."""


def skip_or_fail(reason: str) -> None:
    """Skip a server test with `reason`; under CI=true a missing server fails the run instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so a skipped server test is a failure)")
    pytest.skip(reason)


@asynccontextmanager
async def memory_setup(tmp_path: Path) -> AsyncIterator[BackendSetup]:
    backend = MemoryBackend()
    yield BackendSetup("memory", None, lambda: backend)


@asynccontextmanager
async def sqlite_setup(tmp_path: Path) -> AsyncIterator[BackendSetup]:
    path = tmp_path / "jobs.db"
    yield BackendSetup("sqlite", f"sqlite:///{path}", lambda: SQLiteBackend(str(path)))


POSTGRES_DSN_VARIABLE = "QUEUEKIT_TEST_POSTGRES_DSN"
_postgres_container_dsn: list[str | None] = []
"""The DSN of a testcontainers PostgreSQL started for this run: [] untried, [None] unavailable."""


def postgres_dsn() -> str | None:
    """A PostgreSQL server for the tests: $QUEUEKIT_TEST_POSTGRES_DSN, else a container."""
    dsn = os.environ.get(POSTGRES_DSN_VARIABLE)
    if dsn:
        return dsn
    if not _postgres_container_dsn:
        _postgres_container_dsn.append(_start_postgres_container())
    return _postgres_container_dsn[0]


def _start_postgres_container() -> str | None:
    try:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver=None)
        container.start()
    except Exception:  # no Docker (or no testcontainers): the caller skips
        return None
    atexit.register(container.stop)
    url: str = container.get_connection_url()
    return url


def with_url_options(dsn: str, **options: str) -> str:
    """`dsn` with extra query options (e.g. queuekit_schema=...)."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(options.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


@asynccontextmanager
async def postgres_setup(tmp_path: Path) -> AsyncIterator[BackendSetup]:
    """A fresh schema with a random name on the test server, dropped afterwards."""
    try:
        import asyncpg

        from queuekit.backends.postgres import PostgresBackend
    except ImportError:
        skip_or_fail("asyncpg is not installed: pip install 'queuekit[postgres]'")
    dsn = postgres_dsn()
    if dsn is None:
        skip_or_fail(
            "no PostgreSQL server for the tests: set "
            f"{POSTGRES_DSN_VARIABLE}=postgresql://user@host:port/db (or make Docker available)"
        )
        return
    schema = f"t_{secrets.token_hex(6)}"
    url = with_url_options(dsn, queuekit_schema=schema, queuekit_pool_max="4")
    try:
        yield BackendSetup("postgres", url, lambda: PostgresBackend.from_url(url))
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@asynccontextmanager
async def redis_setup(tmp_path: Path) -> AsyncIterator[BackendSetup]:
    """A random key prefix on the test server ($QUEUEKIT_TEST_REDIS_URL), deleted afterwards."""
    try:
        from .redis.server import redis_store
    except ImportError:
        skip_or_fail("redis is not installed: pip install 'queuekit[redis]'")
    async with redis_store() as setup:
        yield setup


SETUPS: dict[str, Callable[[Path], AbstractAsyncContextManager[BackendSetup]]] = {
    "memory": memory_setup,
    "sqlite": sqlite_setup,
    "postgres": postgres_setup,
    "redis": redis_setup,
}
DURABLE = [name for name in SETUPS if name != "memory"]

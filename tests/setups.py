"""How the tests get a backend of each kind: one `BackendSetup` per backend name."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from queuekit import Backend
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.sqlite import SQLiteBackend

from .postgres.cluster import THROWAWAY_SETTINGS, programs_found, running_cluster

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class BackendSetup:
    """One isolated store for one test: a URL for other processes, and a way to open clients."""

    name: str
    url: str | None
    """How another process reaches the same store; None for memory."""
    make: Callable[[], Backend]
    """A new, unopened client of the same store (memory returns its one instance)."""


def skip_or_fail(reason: str) -> NoReturn:
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
REDIS_URL_VARIABLE = "QUEUEKIT_TEST_REDIS_URL"
SERVERS_HINT = (
    "apt-get install postgresql redis-server (the tests then start private servers), "
    f"or set {POSTGRES_DSN_VARIABLE} and {REDIS_URL_VARIABLE}"
)
"""How to get what a skipped server test lacked; the run's summary says it once."""

private_servers = contextlib.ExitStack()
"""The servers this run started for itself; conftest stops them when the session ends."""


def skip_for_missing(programs: str) -> NoReturn:
    """Skip (under CI=true fail) a test that needs server programs this machine lacks."""
    skip_or_fail(f"{programs} not found; to run these tests: {SERVERS_HINT}")


def postgres_dsn() -> str | None:
    """$QUEUEKIT_TEST_POSTGRES_DSN, else a private cluster started once for the run."""
    return os.environ.get(POSTGRES_DSN_VARIABLE) or _private_postgres()


@functools.cache
def _private_postgres() -> str | None:
    """Start this run's private cluster, the first time it is asked for (None without one)."""
    if not programs_found():
        return None
    return private_servers.enter_context(running_cluster(THROWAWAY_SETTINGS)).dsn


def require_postgres_dsn() -> str:
    """`postgres_dsn()`, or skip (fail under CI=true) when there is none."""
    dsn = postgres_dsn()
    if dsn is None:
        skip_for_missing("initdb/pg_ctl")
    return dsn


def with_url_options(dsn: str, **options: str) -> str:
    """`dsn` with extra query options (e.g. queuekit_schema=...), replacing any of theirs."""
    parts = urlsplit(dsn)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in options]
    query = kept + list(options.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


@asynccontextmanager
async def postgres_setup(tmp_path: Path, dsn: str | None = None) -> AsyncIterator[BackendSetup]:
    """A fresh schema with a random name on the test server (or on `dsn`'s), dropped
    afterwards."""
    try:
        import asyncpg

        from queuekit.backends.postgres import PostgresBackend
    except ImportError:
        skip_or_fail("asyncpg is not installed: pip install 'queuekit[postgres]'")
    dsn = dsn or require_postgres_dsn()
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
    """A random key prefix on the test server, deleted afterwards."""
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

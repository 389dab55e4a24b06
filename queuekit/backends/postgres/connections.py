"""Connecting to PostgreSQL: the pool, queuekit's session settings, the errors of a lost server."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import asyncpg.pool

from ...errors import BackendUnavailableError, InvalidURLError
from .pgbouncer import STARTUP_SETTINGS, set_statement

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
Connection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
)

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out
    asyncpg.PostgresConnectionError,  # 08xxx: the connection does not exist or failed
    asyncpg.InterfaceError,  # "connection is closed", "pool is closing"
    asyncpg.exceptions.AdminShutdownError,  # 57P01: the server is shutting down
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
    # A connection the server closed while idle can be caught between the server's FATAL
    # message and the socket's end: asyncpg then says "cannot switch to state ...".
    asyncpg.exceptions.InternalClientError,
)
"""Errors that mean the server cannot be reached, surfaced as `BackendUnavailableError`."""
CONNECT_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)
"""Errors of a first connection: refused, but also a bad password or an unknown database."""

SERVER_SETTINGS = {
    "application_name": "queuekit",
    "jit": "off",
    "enable_seqscan": "off",
    "plan_cache_mode": "force_generic_plan",
}
"""Session settings for the connections queuekit opens (a DSN option of the same name wins).

- `jit`: the claim's recursive CTE makes the planner overestimate its cost past
  `jit_above_cost`, and compiling then takes ~20 ms for a statement that runs in under 1 ms.
- `enable_seqscan`: a queue table swings from empty to millions of rows between two
  autovacuum ANALYZE runs, and a plan made from statistics taken while it was small scans it
  whole. Every statement queuekit sends has an index path, so with sequential scans priced
  out its plans take the index whatever the statistics say (measured on a fresh table with
  100,000 rows not yet analyzed: 35 ms per claim with sequential scans allowed, 1.4 ms without).
- `plan_cache_mode`: with the plan shape pinned to the indexes, each prepared statement is
  planned once, not on every call: planning was 0.5 ms of a 0.8 ms enqueue and 0.6 ms of a
  1.2 ms claim.
"""
SET_LOCAL = set_statement(SERVER_SETTINGS, local=True)
"""What a statement run through a transaction-mode PgBouncer sets first (see pgbouncer.py)."""


async def _keep_session(_connection: object) -> None:
    """A pool `reset` hook that sends nothing to the server."""


_NO_RESET: dict[str, Any] = (
    {"reset": _keep_session} if "reset" in inspect.signature(asyncpg.create_pool).parameters else {}
)
"""Our own pool's connections carry no session state (no LISTEN, SET, cursors or session
advisory locks), so a released connection needs no `RESET ALL; UNLISTEN *; ...` round trip;
asyncpg still rolls back a transaction left open. (asyncpg >= 0.30 has the hook.)"""


def server_settings(dsn: str | None, *, through_pgbouncer: bool) -> dict[str, str]:
    """Session settings for connections to `dsn`, unless the DSN sets them itself; through
    PgBouncer only those it takes at startup (the others are SET, see pgbouncer.py)."""
    given = dict(parse_qsl(urlsplit(dsn or "").query))
    return {
        name: value
        for name, value in SERVER_SETTINGS.items()
        if name not in given and (name in STARTUP_SETTINGS or not through_pgbouncer)
    }


async def _set_session(conn: Connection) -> None:
    """Behind PgBouncer in session mode, set what it refuses at startup, once per session."""
    await conn.execute(set_statement(SERVER_SETTINGS, local=False))


async def open_pool(
    dsn: str | None,
    *,
    min_size: int,
    max_size: int,
    timeout: float,
    statement_cache_size: int,
    pgbouncer: str | None,
    where: str,
) -> Pool:
    """A pool of connections to `dsn` with queuekit's settings, its first connections open."""
    pool: Pool = asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        statement_cache_size=statement_cache_size,
        server_settings=server_settings(dsn, through_pgbouncer=pgbouncer is not None),
        init=_set_session if pgbouncer == "session" else None,
        **_NO_RESET,
    )
    try:
        await pool
    except ValueError as exc:  # asyncpg's DSN parser (ClientConfigurationError too)
        pool.terminate()
        raise InvalidURLError(f"bad PostgreSQL DSN: {exc}") from None
    except CONNECT_ERRORS as exc:
        pool.terminate()
        raise BackendUnavailableError(
            f"cannot connect to PostgreSQL at {where} (is the server running and "
            f"the DSN right?): {type(exc).__name__}: {exc}"
        ) from exc
    return pool


async def close_pool(pool: Pool) -> None:
    """Close `pool`, waiting for its connections a while, then cutting them."""
    try:
        async with asyncio.timeout(10):
            await pool.close()
    except CONNECTION_ERRORS:  # TimeoutError is an OSError
        pool.terminate()

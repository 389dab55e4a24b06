"""The caller's own connection (`connection=`): asyncpg's, psycopg's, or SQLAlchemy's, checked.

SQLAlchemy and psycopg are imported only when given one of their objects, so queuekit does
not need them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import asyncpg.pool

from ...errors import InvalidConnectionError
from .inserts import Fetcher

AsyncpgConnection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
NO_TRANSACTION = "has no open transaction (the job would commit on its own): begin one first"


async def caller_connection(connection: object, identity_sql: str, database: str) -> Fetcher:
    """`connection` (asyncpg's, psycopg's, or SQLAlchemy's on either) as something to store
    jobs on, once it is seen to be open, inside a transaction, and on `database` with this
    backend's jobs table (`identity_sql` tells)."""
    identity = None
    if type(connection).__module__.startswith("sqlalchemy."):
        identity, connection = await _from_sqlalchemy(connection, identity_sql)
    driver = _driver(connection)
    if identity is None:
        identity = await driver.fetchrow(identity_sql)
    _check_identity(identity, database)
    return driver if identity["json_probe"] == "null" else _JSONAsText(driver)


def _driver(connection: object) -> Fetcher:
    """`connection`, asyncpg's or psycopg's, once it is seen to be open and in a transaction."""
    if type(connection).__module__.startswith("psycopg"):
        from .psycopg_caller import psycopg_fetcher

        return psycopg_fetcher(connection)
    if not isinstance(connection, AsyncpgConnection):
        raise InvalidConnectionError(
            "connection= takes an asyncpg connection (or a pool's), psycopg's AsyncConnection, "
            f"or SQLAlchemy's AsyncConnection or AsyncSession, not {type(connection).__name__}"
        )
    try:
        if connection.is_closed():
            raise InvalidConnectionError("connection= is closed")
    except asyncpg.InterfaceError:
        raise InvalidConnectionError(
            "connection= was released to its pool: pass a connection you hold"
        ) from None
    if not connection.is_in_transaction():
        raise InvalidConnectionError(f"connection= {NO_TRANSACTION}")
    return connection


async def _from_sqlalchemy(connection: Any, identity_sql: str) -> tuple[Any, object]:
    """The identity row and the driver connection of an `AsyncConnection` or `AsyncSession`."""
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(connection, AsyncSession):
        if not connection.in_transaction():
            raise InvalidConnectionError(f"connection= (a session) {NO_TRANSACTION}")
        connection = await connection.connection()
    if not isinstance(connection, AsyncConnection):
        raise InvalidConnectionError(
            f"connection= takes SQLAlchemy's AsyncConnection or AsyncSession, not "
            f"{type(connection).__name__}"
        )
    if connection.closed:
        raise InvalidConnectionError("connection= is closed")
    if not connection.in_transaction():
        raise InvalidConnectionError(f"connection= {NO_TRANSACTION}")
    # Through SQLAlchemy, not the driver: its asyncpg adapter sends BEGIN only with the
    # transaction's first statement, which this may be.
    identity = (await connection.exec_driver_sql(identity_sql)).mappings().one()
    return identity, (await connection.get_raw_connection()).driver_connection


def _check_identity(identity: Mapping[str, Any] | None, database: str) -> None:
    """Refuse a connection to another database, or one that cannot see the jobs table."""
    assert identity is not None
    if identity["database"] != database:
        raise InvalidConnectionError(
            f"connection= is to database {identity['database']!r}; the queue is in {database!r}"
        )
    if not identity["has_jobs"]:
        raise InvalidConnectionError(
            "connection= does not see the queue's jobs table (another server, or no access)"
        )


@dataclass
class _JSONAsText:
    """A connection that decodes json columns (SQLAlchemy gives asyncpg such a codec), whose
    rows come back with them as text again, as `job_from_row` reads them."""

    driver: Fetcher

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        return [_as_text(row) for row in await self.driver.fetch(query, *args)]

    async def fetchrow(self, query: str, *args: Any) -> Any:
        row = await self.driver.fetchrow(query, *args)
        return None if row is None else _as_text(row)


def _as_text(row: Mapping[str, Any] | asyncpg.Record) -> dict[str, Any]:
    """`row` with its decoded json columns encoded again (SQL NULL stays None); a row of
    another shape (a parent's status) as it is."""
    text = dict(row.items())
    for column in ("payload", "result", "headers"):
        if column in text and (column == "payload" or text[column] is not None):
            text[column] = json.dumps(text[column])
    return text

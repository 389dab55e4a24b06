"""A caller's psycopg 3 `AsyncConnection` (`connection=`), running queuekit's SQL as asyncpg does.

Imported only when given a psycopg connection, so queuekit does not need psycopg.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row

from ...errors import InvalidConnectionError
from .callers import NO_TRANSACTION


@dataclass
class PsycopgFetcher:
    """asyncpg's `fetch` and `fetchrow` on a psycopg connection: psycopg's raw cursor takes
    the `$n` parameters queries.sql is written with, so the statements are the same."""

    connection: psycopg.AsyncConnection[Any]

    async def fetch(self, query: str, *args: Any) -> list[DictRow]:
        async with psycopg.AsyncRawCursor(self.connection, row_factory=dict_row) as cursor:
            await cursor.execute(query, args)
            # A command (SAVEPOINT) returns no rows at all, which asyncpg's `fetch` gives as [].
            return [] if cursor.description is None else await cursor.fetchall()

    async def fetchrow(self, query: str, *args: Any) -> DictRow | None:
        rows = await self.fetch(query, *args)
        return rows[0] if rows else None


def psycopg_fetcher(connection: object) -> PsycopgFetcher:
    """`connection`, once it is seen to be psycopg's, open, and inside a transaction."""
    if not isinstance(connection, psycopg.AsyncConnection):
        raise InvalidConnectionError(
            f"connection= takes psycopg's AsyncConnection, not {type(connection).__name__}"
        )
    if connection.closed:
        raise InvalidConnectionError("connection= is closed")
    if connection.info.transaction_status != TransactionStatus.INTRANS:
        raise InvalidConnectionError(f"connection= {NO_TRANSACTION}")
    return PsycopgFetcher(connection)

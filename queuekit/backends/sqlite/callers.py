"""The caller's own aiosqlite connection (`connection=`), checked; rows by name on any one."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

import aiosqlite

from ...errors import InvalidConnectionError


async def caller_connection(
    connection: object, file_sql: str, database_file: str
) -> aiosqlite.Connection:
    """`connection`, once it is seen to be open, inside a transaction, and on `database_file`
    (the backend's, as `file_sql` tells it)."""
    if not isinstance(connection, aiosqlite.Connection):
        raise InvalidConnectionError(
            f"connection= takes an aiosqlite connection on SQLite, not {type(connection).__name__}"
        )
    try:
        in_transaction = connection.in_transaction
    except ValueError:  # aiosqlite's "no active connection"
        raise InvalidConnectionError("connection= is closed") from None
    if not in_transaction:
        raise InvalidConnectionError(
            "connection= has no open transaction (the job would commit on its own): begin one first"
        )
    if not database_file:
        raise InvalidConnectionError("connection= cannot share an in-memory SQLite database")
    file = await file_of(connection, file_sql)
    if file != database_file:
        raise InvalidConnectionError(
            f"connection= is to the database file {file!r}; the queue is in {database_file!r}"
        )
    return connection


async def file_of(db: aiosqlite.Connection, file_sql: str) -> str:
    """The file of `db`'s main database (empty for an in-memory one)."""
    (row,) = await rows_by_name(db, file_sql, {})
    return str(row["file"])


async def rows_by_name(
    db: aiosqlite.Connection, sql: str, params: Mapping[str, Any]
) -> list[sqlite3.Row]:
    """Run `sql` on `db` and return rows by column name, whatever `db`'s own row factory (a
    caller's connection keeps its own)."""
    if db.row_factory is sqlite3.Row:
        return list(await db.execute_fetchall(sql, params))
    async with db.execute(sql, params) as cursor:
        cursor.row_factory = sqlite3.Row
        return list(await cursor.fetchall())

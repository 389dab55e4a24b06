"""Transactions on an aiosqlite connection that no cancellation leaves open: `immediate` (a
write transaction), `snapshot` (a read) and `savepoint` (inside a caller's transaction)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite
import anyio


@asynccontextmanager
async def immediate(db: aiosqlite.Connection) -> AsyncIterator[None]:
    """`BEGIN IMMEDIATE` (the write lock up front, so no deadlocks), then `COMMIT`, or
    `ROLLBACK` if the block raises.

    The three run shielded from cancellation: aiosqlite runs a statement in its own thread,
    so a BEGIN whose caller was cancelled (a worker's chore, at shutdown) would still run and
    leave the connection inside a transaction, refusing every later BEGIN.
    """
    async with _enclosed(db, "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)):
        yield


@asynccontextmanager
async def snapshot(db: aiosqlite.Connection) -> AsyncIterator[None]:
    """A read transaction, so the reads of the block see one state of the database."""
    async with _enclosed(db, "BEGIN", "COMMIT", ("ROLLBACK",)):
        yield


@asynccontextmanager
async def savepoint(db: aiosqlite.Connection) -> AsyncIterator[None]:
    """A savepoint inside the transaction `db` is in: the block's writes are undone if it
    raises, the rest of the transaction kept."""
    name = "queuekit_savepoint"
    # ROLLBACK TO undoes the writes but leaves the savepoint open: RELEASE ends it.
    undo = (f"ROLLBACK TO {name}", f"RELEASE {name}")
    async with _enclosed(db, f"SAVEPOINT {name}", f"RELEASE {name}", undo):
        yield


@asynccontextmanager
async def _enclosed(
    db: aiosqlite.Connection, begin: str, end: str, undo: tuple[str, ...]
) -> AsyncIterator[None]:
    """Run `begin`, the block, then `end`, or the statements of `undo` if the block raises
    (each shielded, as `immediate` explains)."""
    with anyio.CancelScope(shield=True):
        await db.execute(begin)
    try:
        yield
    except BaseException:
        with anyio.CancelScope(shield=True):
            for statement in undo:
                await db.execute(statement)
        raise
    with anyio.CancelScope(shield=True):
        await db.execute(end)

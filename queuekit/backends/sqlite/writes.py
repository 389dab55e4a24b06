"""`immediate`: a write transaction on an aiosqlite connection that no cancellation leaves open."""

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
    with anyio.CancelScope(shield=True):
        await db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with anyio.CancelScope(shield=True):
            await db.execute("ROLLBACK")
        raise
    with anyio.CancelScope(shield=True):
        await db.execute("COMMIT")

"""Runs a limited claim (a `Plan`, limited.py) in one hop: on its own connection and thread."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import aiosqlite

from .limited import Plan
from .writes import immediate

T = TypeVar("T")


async def run_async(db: aiosqlite.Connection, plan: Plan[T]) -> T:
    """Run `plan` on `db`, a statement at a time (each a hop to aiosqlite's thread)."""
    try:
        sql, params = next(plan)
        while True:
            rows = list(await db.execute_fetchall(sql, params))
            sql, params = plan.send(rows)
    except StopIteration as done:
        result: T = done.value
        return result


def run_sync(connection: sqlite3.Connection, plan: Plan[T]) -> T:
    """Run `plan` on `connection` in one write transaction, from this thread."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        try:
            sql, params = next(plan)
            while True:
                sql, params = plan.send(connection.execute(sql, params).fetchall())
        except StopIteration as done:
            result: T = done.value
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


class LimitedClaims:
    """Runs limited claims on a connection of their own, in a thread of their own.

    A limited claim takes several statements in one write transaction, and each statement
    on the backend's aiosqlite connection is a hop between threads; here the whole claim is
    one, which keeps a limited queue's drain close to an unlimited one's. The backend calls
    `claim` under its lock, so claims never overlap (the one thread also runs them in turn).
    An in-memory database cannot be shared with another connection: its claims run on the
    backend's connection, a statement at a time (`run_async`)."""

    def __init__(self, path: str, *, busy_timeout_ms: int, synchronous: str) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.synchronous = synchronous
        self._connection: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="queuekit-claims")

    async def claim(self, db: aiosqlite.Connection, plan: Plan[T]) -> T:
        """Run `plan` in a write transaction; `db` is the backend's own connection."""
        if self.path == ":memory:":
            async with immediate(db):
                return await run_async(db, plan)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run, plan)

    def _run(self, plan: Plan[T]) -> T:
        if self._connection is None:
            self._connection = self._connect()
        return run_sync(self._connection, plan)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        connection.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        return connection

    async def close(self) -> None:
        """Close the connection (in its thread, after any claim still running) and the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

"""`PostgresTable`: a jobs table on a pool, its statements run guarded, and the waiters it wakes."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Sequence
from functools import partial

import asyncpg

from ...limits import Limits
from ..guards import require_open, unavailable_on
from ..waiters import KeyedWaiters
from .connections import CONNECTION_ERRORS, SET_LOCAL, Pool
from .pgbouncer import TUNED_STATEMENTS, fetch_with_settings
from .statements import Statements

DEADLOCK_RETRIES = 4
"""How often a statement runs again when the server broke a deadlock by rolling it back: the
triggers that decide dependents (migration 15) lock them in the order their parents end, so
two statements ending parents of the same jobs in other orders can deadlock."""


class PostgresTable:
    """What every part of `PostgresBackend` uses: the pool (set while open), the table's
    statements by name, and the waiters of this process that its changes wake."""

    def __init__(self, schema: str, table: str, *, where: str, transaction_pooled: bool) -> None:
        self._pool: Pool | None = None
        """The pool in use: set while the backend is open."""
        self.schema = schema
        self.table = table
        self._statements = Statements(schema, table)
        self._sql = self._statements.sql
        self.qualified_table = self._statements.jobs
        self.channel = self._statements.channel
        self._where = where
        self._guard = partial(unavailable_on, CONNECTION_ERRORS, f"PostgreSQL at {where}")
        """Turns a lost or refused connection into `BackendUnavailableError`."""
        self._tuned = TUNED_STATEMENTS if transaction_pooled else frozenset()
        """Statements run in a transaction of their own that sets SERVER_SETTINGS locally."""
        self._work_waiters = KeyedWaiters()
        """Waiting for work, by queue name."""
        self._outcome_waiters = KeyedWaiters()
        """Waiting for a job to end, by job id."""
        self._limited: dict[str, Limits] = {}
        """Every queue's limits as last read (see limited.py): which queues a claim takes
        under limits. Never trusted for correctness, only for routing and wake-ups."""
        self._held: set[str] = set()
        """The queues without limits with a key held, as last read: claimed as limited ones."""
        self._limited_read_at = -math.inf
        """When `_limited` and `_held` were read (`time.monotonic`)."""

    def _wake_freed(self, queues: Iterable[str]) -> None:
        """Wake this process's waiters on those of `queues` that have limits: a job of theirs
        stopped running, so a slot may have come free."""
        self._work_waiters.wake(queue for queue in queues if queue in self._limited)

    def _require_pool(self) -> Pool:
        return require_open(self._pool, "PostgreSQL")

    async def _fetch(self, name: str, *args: object) -> list[asyncpg.Record]:
        pool = self._require_pool()
        with self._guard():
            for _ in range(DEADLOCK_RETRIES):
                # Rolled back whole (it ran in a transaction of its own): run it again.
                with contextlib.suppress(asyncpg.DeadlockDetectedError):
                    return await self._fetch_once(pool, name, args)
            return await self._fetch_once(pool, name, args)

    async def _fetch_once(
        self, pool: Pool, name: str, args: Sequence[object]
    ) -> list[asyncpg.Record]:
        if name in self._tuned:
            async with pool.acquire() as conn:
                return await fetch_with_settings(conn, SET_LOCAL, self._sql[name], args)
        return await pool.fetch(self._sql[name], *args)

    async def _execute(self, name: str, *args: object) -> str:
        pool = self._require_pool()
        with self._guard():
            return await pool.execute(self._sql[name], *args)

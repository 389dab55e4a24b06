"""`Expiry`: `PostgresBackend`'s sweep of jobs that expired unstarted, in bounded batches."""

from __future__ import annotations

from ...backend import EXPIRE_BATCH
from .table import PostgresTable


class Expiry(PostgresTable):
    """`expire` by the `expire` statement (queries.sql), one statement per batch."""

    async def expire(self) -> int:
        expired = 0
        while True:
            (row,) = await self._fetch("expire", EXPIRE_BATCH, self.channel)
            ids: list[str] = row["ids"]
            expired += len(ids)
            # This process's own waiters; the others hear the outcome notification.
            self._outcome_waiters.wake(ids)
            if row["chosen"] < EXPIRE_BATCH:
                return expired

"""`Expiry`: `PostgresBackend`'s sweep of jobs that expired unstarted, in bounded batches."""

from __future__ import annotations

from ...backend import EXPIRE_BATCH
from .limited import LimitedClaims


class Expiry(LimitedClaims):
    """`expire` by the `expire` statement (queries.sql), one statement per batch; each call
    also makes a round of the key-state sweep (limited.py), a chore of every worker too."""

    async def expire(self) -> int:
        await self._forget_keys()
        expired = 0
        while True:
            (row,) = await self._fetch("expire", EXPIRE_BATCH, self.channel)
            ids: list[str] = row["ids"]
            expired += len(ids)
            # This process's own waiters; the others hear the outcome notification.
            self._outcome_waiters.wake(ids)
            if row["chosen"] < EXPIRE_BATCH:
                return expired

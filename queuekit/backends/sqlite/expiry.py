"""`Expiry`: `SQLiteBackend`'s sweeps of jobs that expired unstarted and of idle keys' states."""

from __future__ import annotations

from typing import Any

from ...backend import EXPIRE_BATCH, Backend
from ...job import NewJob
from .decided import take_decided
from .queries import SQL
from .table import SQLiteTable


def expiry_params(new: NewJob) -> dict[str, float | None]:
    """The insert's expiry parameters: an absolute time, or seconds from the statement's now."""
    return {
        "expires_at": None if new.expires_at is None else new.expires_at.timestamp(),
        "expires_in": new.expires_in,
    }


FORGET_BATCH = 500
"""How many key state rows one write of the key-state sweep looks at."""
FORGET_BATCHES = 10
"""How many of those writes one round of the sweep makes at most (the next round goes on from
there), so a round costs a bounded time however many keys there are."""


class Expiry(SQLiteTable, Backend):
    """`expire` by the `expire` statement (queries.sql), one transaction per batch; each call
    also makes a round of the key-state sweep, a chore of every worker too."""

    _forget_after: tuple[str, str] = ("", "")
    """Where the key-state sweep goes on from: the last (queue, key) it looked at."""

    async def expire(self) -> int:
        expired = 0
        while True:
            # Each batch takes what it decided for dependents in its own transaction: the
            # statement does not say which had dependents, and the sweep is no hot path.
            async with self._transaction() as db:
                cursor = await db.execute(SQL["expire"], {"limit": EXPIRE_BATCH})
                batch = cursor.rowcount
                decided = await take_decided(db) if batch else []
            self._announce_decided(decided)
            expired += batch
            if batch < EXPIRE_BATCH:
                break
        if expired:
            # An expired job with dependents may have released some (migration 15).
            await self._notify_work()
        await self._forget_keys()
        return expired

    async def _forget_keys(self) -> int:
        """A round of the sweep (`forget_keys`): how many key states went."""
        forgotten = 0
        for _ in range(FORGET_BATCHES):
            queue, key = self._forget_after
            params: dict[str, Any] = {"queue": queue, "key": key, "limit": FORGET_BATCH}
            ends = await self._read("key_states_after", params)
            end = (ends[0]["queue"], ends[0]["key"]) if ends else (None, None)
            params.update(end_queue=end[0], end_key=end[1])
            forgotten += await self._change("forget_keys", params)
            if not ends:
                self._forget_after = ("", "")
                break
            self._forget_after = (ends[0]["queue"], ends[0]["key"])
        return forgotten

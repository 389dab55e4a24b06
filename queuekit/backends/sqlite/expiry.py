"""`Expiry`: `SQLiteBackend`'s sweep of jobs that expired unstarted, in bounded batches."""

from __future__ import annotations

from ...backend import EXPIRE_BATCH, Backend
from ...job import NewJob
from .table import SQLiteTable


def expiry_params(new: NewJob) -> dict[str, float | None]:
    """The insert's expiry parameters: an absolute time, or seconds from the statement's now."""
    return {
        "expires_at": None if new.expires_at is None else new.expires_at.timestamp(),
        "expires_in": new.expires_in,
    }


class Expiry(SQLiteTable, Backend):
    """`expire` by the `expire` statement (queries.sql), one write per batch."""

    async def expire(self) -> int:
        return await self._change_in_batches("expire", {"limit": EXPIRE_BATCH})

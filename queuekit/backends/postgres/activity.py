"""`ActivityLog`: `PostgresBackend`'s activity by minute, one statement a call."""

from __future__ import annotations

from collections.abc import Sequence

from ...activity import ActivityCounts, Minute
from ..activity_rows import counts_json, minute_from_row
from .table import PostgresTable


class ActivityLog(PostgresTable):
    """Adding to and reading the per-queue minutes (see queries.sql)."""

    async def add_activity(self, counts: Sequence[ActivityCounts], *, keep: float) -> None:
        await self._fetch("add_activity", counts_json(counts), keep)

    async def activity(self, queue: str, minutes: int) -> list[Minute]:
        return [minute_from_row(row) for row in await self._fetch("activity", queue, minutes)]

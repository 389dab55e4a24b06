"""`ActivityLog`: `PostgresBackend`'s activity by minute, one statement a call (two when the
call creates a minute, whose depth it then samples)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ...activity import DEPTH_CAP, ActivityCounts, Minute
from ..activity_rows import counts_json, minute_from_row
from .table import PostgresTable

logger = logging.getLogger("queuekit.activity")


class ActivityLog(PostgresTable):
    """Adding to and reading the per-queue minutes (see queries.sql)."""

    async def add_activity(
        self, counts: Sequence[ActivityCounts], *, keep: float, depth_cap: int = DEPTH_CAP
    ) -> None:
        rows = await self._fetch("add_activity", counts_json(counts), keep)
        created = [row["queue"] for row in rows if row["created"]]
        if not created:
            return
        try:
            await self._execute("sample_depth", created, rows[0]["minute"], depth_cap)
        except Exception as exc:
            # The counts are in: raising would have the recorder add them again. The minute
            # keeps no sample, and reads as the last one before it.
            logger.warning("depth of %s not sampled: %s", ", ".join(created), exc)

    async def activity(self, queue: str, minutes: int) -> list[Minute]:
        return [minute_from_row(row) for row in await self._fetch("activity", queue, minutes)]

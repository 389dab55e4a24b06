"""`ActivityLog`: `SQLiteBackend`'s activity by minute (see queries.sql)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ...activity import DEPTH_CAP, ActivityCounts, Minute
from ..activity_rows import minute_from_row
from .queries import SQL
from .table import SQLiteTable


class ActivityLog(SQLiteTable):
    """Adding to and reading the per-queue minutes; `SQLiteBackend` gives the connection's
    calls."""

    async def add_activity(
        self, counts: Sequence[ActivityCounts], *, keep: float, depth_cap: int = DEPTH_CAP
    ) -> None:
        async with self._transaction() as db:
            ((minute,),) = await db.execute_fetchall(SQL["activity_minute"])
            for entry in counts:
                where = {"queue": entry.queue, "minute": minute}
                stored = list(await db.execute_fetchall(SQL["activity_row"], where))
                if stored:
                    known = minute_from_row(stored[0])
                    entry, depth = entry + known.counts, known.depth
                else:
                    sample = {"queue": entry.queue, "cap": depth_cap}
                    ((depth,),) = await db.execute_fetchall(SQL["activity_depth"], sample)
                await db.execute(
                    SQL["put_activity"],
                    {
                        **where,
                        "enqueued": entry.enqueued,
                        "completed": entry.completed,
                        "failed": entry.failed,
                        "dead": entry.dead,
                        "wait": json.dumps(entry.wait),
                        "run": json.dumps(entry.run),
                        "depth": depth,
                    },
                )
                await db.execute(SQL["forget_activity"], {"queue": entry.queue, "keep": keep})

    async def activity(self, queue: str, minutes: int) -> list[Minute]:
        rows = await self._read("activity", {"queue": queue, "minutes": minutes})
        return [minute_from_row(row) for row in rows]

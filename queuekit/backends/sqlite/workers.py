"""`Workers`: `SQLiteBackend`'s worker registry, one row per worker (see queries.sql)."""

from __future__ import annotations

from ...backend import WorkerRecord
from ..worker_rows import worker_from_row
from .queries import SQL
from .table import SQLiteTable


class Workers(SQLiteTable):
    """The registry's calls; `SQLiteBackend` gives the connection's."""

    async def beat_worker(self, worker_id: str, info: str, *, ttl: float) -> bool:
        params = {"id": worker_id, "info": info, "ttl": ttl}
        async with self._transaction() as db:
            await db.execute(SQL["forget_workers"], params)
            cursor = await db.execute(SQL["beat_worker"], params)
            row = await cursor.fetchone()
        return row is not None and bool(row[0])

    async def list_workers(self) -> list[WorkerRecord]:
        return [worker_from_row(row) for row in await self._read("list_workers", {})]

    async def drain_worker(self, worker_id: str) -> bool:
        return await self._change("drain_worker", {"id": worker_id}) > 0

    async def remove_worker(self, worker_id: str) -> None:
        await self._change("remove_worker", {"id": worker_id})

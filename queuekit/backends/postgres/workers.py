"""`Workers`: `PostgresBackend`'s worker registry, one row per worker (see queries.sql)."""

from __future__ import annotations

from ...backend import WorkerRecord
from ..worker_rows import worker_from_row
from .table import PostgresTable


class Workers(PostgresTable):
    """The registry's calls, each one statement."""

    async def beat_worker(self, worker_id: str, info: str, *, ttl: float) -> bool:
        (row,) = await self._fetch("beat_worker", worker_id, info, ttl)
        return bool(row["draining"])

    async def list_workers(self) -> list[WorkerRecord]:
        return [worker_from_row(row) for row in await self._fetch("list_workers")]

    async def drain_worker(self, worker_id: str) -> bool:
        return bool(await self._fetch("drain_worker", worker_id))

    async def remove_worker(self, worker_id: str) -> None:
        await self._fetch("remove_worker", worker_id)

"""`Workers`: `SQLiteBackend`'s worker registry, one row per worker (see queries.sql)."""

from __future__ import annotations

import abc
import sqlite3
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiosqlite

from ...backend import WorkerRecord
from ..worker_rows import worker_from_row
from .queries import SQL


class Workers(abc.ABC):
    """The registry's calls; `SQLiteBackend` gives the connection's."""

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """A write transaction under the process's lock."""

    @abc.abstractmethod
    async def _read(
        self, name: str, params: Mapping[str, Any], conditions: str = ""
    ) -> list[sqlite3.Row]:
        """Run the query `name`."""

    @abc.abstractmethod
    async def _change(self, name: str, params: Mapping[str, Any]) -> int:
        """Run the write statement `name`; how many rows it changed."""

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

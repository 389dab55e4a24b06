"""`SQLiteTable`: the calls on its connection that `SQLiteBackend` gives each of its parts."""

from __future__ import annotations

import abc
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiosqlite


class SQLiteTable(abc.ABC):
    """What the parts of `SQLiteBackend` (repairs, workers, activity, expiry) run their
    statements with; the backend implements them on its one connection."""

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """A write transaction under the process's lock."""

    @abc.abstractmethod
    def _snapshot(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """A read transaction under the process's lock, for reads that must agree."""

    @abc.abstractmethod
    async def _read(
        self, name: str, params: Mapping[str, Any], conditions: str = ""
    ) -> list[sqlite3.Row]:
        """Run the query `name`, its `{filter}` filled with `conditions`."""

    @abc.abstractmethod
    async def _write(self, sql: str, params: Mapping[str, Any]) -> tuple[list[sqlite3.Row], int]:
        """Run one write statement; its RETURNING rows and row count."""

    @abc.abstractmethod
    async def _change(self, name: str, params: Mapping[str, Any]) -> int:
        """Run the write statement `name`; how many rows it changed."""

    @abc.abstractmethod
    async def _notify_work(self) -> None:
        """Wake this process's waiters: work may have become claimable."""

    @abc.abstractmethod
    def _announce_decided(self, rows: Iterable[sqlite3.Row]) -> None:
        """Announce the decisions for dependents that `take_decided` returned (`FileEvents`)."""

    async def _change_in_batches(self, name: str, params: Mapping[str, Any]) -> int:
        """Run the write statement `name`, which changes at most `params["limit"]` rows, until
        it changes fewer (so no write holds the lock for long); how many rows in all."""
        changed = 0
        while (batch := await self._change(name, params)) > 0:
            changed += batch
            if batch < params["limit"]:
                break
        return changed

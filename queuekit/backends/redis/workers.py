"""`Workers`: `RedisBackend`'s worker registry, a hash per worker (see lua/workers.lua)."""

from __future__ import annotations

from ...backend import Backend, WorkerRecord
from ..worker_rows import worker_from_row
from .calls import RedisCalls
from .keys import Keys
from .replies import micros

FIELDS = ("id", "info", "started_at", "last_seen", "draining")
"""What `workers.lua` returns of each listed worker, in order."""


class Workers(Backend):
    """The registry's calls, each one script call in the prefix's slot."""

    _calls: RedisCalls
    _keys: Keys

    async def _workers(self, *args: str) -> object:
        return await self._calls.eval("workers", self._keys.workers(), list(args))

    async def beat_worker(self, worker_id: str, info: str, *, ttl: float) -> bool:
        return bool(await self._workers("beat", worker_id, info, str(micros(ttl))))

    async def list_workers(self) -> list[WorkerRecord]:
        reply = await self._workers("list", "")
        assert isinstance(reply, list)
        rows = [dict(zip(FIELDS, entry, strict=True)) for entry in reply]
        return sorted((worker_from_row(row) for row in rows), key=lambda w: w.worker_id)

    async def drain_worker(self, worker_id: str) -> bool:
        return bool(await self._workers("drain", worker_id))

    async def remove_worker(self, worker_id: str) -> None:
        await self._workers("remove", worker_id)

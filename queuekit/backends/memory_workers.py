"""`MemoryWorkers`: `MemoryBackend`'s worker registry, entries in a dict on its clock."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from ..backend import Backend, WorkerRecord
from .times import stored_time


@dataclass(slots=True)
class _Entry:
    info: str
    started_at: float
    last_seen: float
    ttl: float
    draining: bool = False


class MemoryWorkers(Backend):
    """The registry's four calls over `_workers`; `MemoryBackend` gives the clock."""

    _workers: dict[str, _Entry]

    @abc.abstractmethod
    def _now(self) -> float:
        """The backend's clock, in epoch seconds, never stepping back."""

    async def beat_worker(self, worker_id: str, info: str, *, ttl: float) -> bool:
        now = self._now()
        self._workers = {
            key: entry
            for key, entry in self._workers.items()
            if entry.last_seen + 2 * entry.ttl >= now or key == worker_id
        }
        entry = self._workers.get(worker_id)
        if entry is None:
            entry = self._workers[worker_id] = _Entry(info, now, now, ttl)
        entry.info, entry.last_seen, entry.ttl = info, now, ttl
        return entry.draining

    async def list_workers(self) -> list[WorkerRecord]:
        now = self._now()
        return [
            WorkerRecord(
                worker_id,
                entry.info,
                stored_time(entry.started_at),
                stored_time(entry.last_seen),
                entry.draining,
            )
            for worker_id, entry in sorted(self._workers.items())
            if entry.last_seen + entry.ttl > now
        ]

    async def drain_worker(self, worker_id: str) -> bool:
        entry = self._workers.get(worker_id)
        if entry is None or entry.last_seen + entry.ttl <= self._now():
            return False
        entry.draining = True
        return True

    async def remove_worker(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)

"""The memory backend's job expiry: a heap of expiry times, and the sweep that claims run first."""

from __future__ import annotations

import abc
import heapq
from typing import Any

from ..backend import EXPIRED, Backend
from ..job import JobStatus, NewJob

Record = dict[str, Any]


def expiry_of(new: NewJob, now: float) -> float | None:
    """When `new`, enqueued at `now`, expires (epoch seconds), or None."""
    if new.expires_at is not None:
        return new.expires_at.timestamp()
    return None if new.expires_in is None else now + new.expires_in


def expirable(record: Record, now: float) -> bool:
    """Whether the job of `record` never started and its expiry has passed at `now`."""
    expires_at = record["expires_at"]
    return (
        expires_at is not None
        and expires_at <= now
        and record["status"] == JobStatus.PENDING
        and record["started_at"] is None
    )


class MemoryExpiry(Backend):
    """Expiry for `MemoryBackend`: every claim sweeps first, so none meets an expired job."""

    _jobs: dict[str, Record]
    _expiring: list[tuple[float, str]]
    """(expires_at, job id) of the jobs enqueued with an expiry; entries of jobs that started,
    finished or went are dropped as they come due."""

    @abc.abstractmethod
    def _now(self) -> float: ...

    @abc.abstractmethod
    def _finish(self, record: Record, status: JobStatus, now: float) -> None: ...

    def _note_expiry(self, record: Record) -> None:
        if record["expires_at"] is not None:
            heapq.heappush(self._expiring, (record["expires_at"], record["id"]))

    _expired = 0
    """Jobs expired since the last `expire`, by it or by claims: it reports them."""

    def _expire_due(self, now: float) -> None:
        """Cancel the jobs expired by `now`, as `cancel` does, with the error "expired"."""
        while self._expiring and self._expiring[0][0] <= now:
            _, job_id = heapq.heappop(self._expiring)
            record = self._jobs.get(job_id)
            if record is not None and expirable(record, now):
                record["last_error"] = EXPIRED
                self._finish(record, JobStatus.CANCELLED, now)
                self._expired += 1

    async def expire(self) -> int:
        self._expire_due(self._now())
        expired, self._expired = self._expired, 0
        return expired

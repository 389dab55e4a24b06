"""`InProcessCancels`: a SQLite backend's cancels of running jobs, pushed to its own waiters."""

from __future__ import annotations

from collections.abc import Sequence

from ...backend import Batch, JobFilter
from ...job import Job
from ..losses import CancelsHere
from .repairs import Repairs


class InProcessCancels(Repairs):
    """`wait_for_loss` for `SQLiteBackend`: a cancel made through this backend wakes its
    waiters at once. SQLite cannot signal across processes: a cancel made by another process
    is found by the holding worker's next heartbeat (every third of its lease)."""

    _cancels: CancelsHere

    async def wait_for_loss(self, jobs: Sequence[Job], timeout: float) -> None:
        await self._cancels.wait(jobs, timeout)

    async def cancel(self, job_id: str) -> Job | None:
        job = await super().cancel(job_id)
        self._cancels.cancelled(job)
        return job

    async def cancel_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        batch = await super().cancel_batch(where, after=after, limit=limit)
        self._cancels.cancelled_in_bulk(where, batch)
        return batch

"""`InProcessCancels`: a SQLite backend's cancels of running jobs, pushed to its own waiters."""

from __future__ import annotations

from collections.abc import Sequence

from ...job import Job
from ..losses import WakesOnCancel
from .repairs import Repairs


class InProcessCancels(WakesOnCancel, Repairs):
    """`wait_for_loss` for `SQLiteBackend`: a cancel made through this backend wakes its
    waiters at once. SQLite cannot signal across processes: a cancel made by another process
    is found by the holding worker's next heartbeat (every third of its lease)."""

    async def wait_for_loss(self, jobs: Sequence[Job], timeout: float) -> None:
        await self._cancels.wait(jobs, timeout)

"""The memory backend's lease keeping: heartbeats (with progress) and cancels pushed in process."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from ..backend import Backend
from ..job import Attempt, Job
from ..progress import ProgressUpdate
from .losses import LossWaiters
from .waiters import wait_at_most

Record = dict[str, Any]


class MemoryLeases(Backend):
    """`heartbeat` and `wait_for_loss` for `MemoryBackend`."""

    _losses: LossWaiters
    """Woken by job id when a running job is cancelled."""

    @abc.abstractmethod
    def _now(self) -> float: ...

    @abc.abstractmethod
    def _holding(self, attempt: Attempt) -> Record | None:
        """The record of the job `attempt` holds, or None when it lost it."""

    async def heartbeat(
        self,
        attempts: Sequence[Attempt],
        *,
        lease: float,
        progress: Mapping[Attempt, ProgressUpdate] | None = None,
    ) -> set[Attempt]:
        now = self._now()
        lost: set[Attempt] = set()
        for attempt in attempts:
            record = self._holding(attempt)
            if record is None:
                lost.add(attempt)
            else:
                record["lease_expires_at"] = now + lease
                if progress and attempt in progress:
                    record.update(progress[attempt].columns())
        return lost

    async def wait_for_loss(self, jobs: Sequence[Job], timeout: float) -> None:
        with self._losses.registered(job.id for job in jobs) as event:
            await wait_at_most(event, timeout)

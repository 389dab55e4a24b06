"""`PushedCancels`: a PostgreSQL backend's cancels of running jobs, pushed to the workers
holding them through `c:<ids>` notifications on its one LISTEN connection."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from ...job import Job
from ..losses import WakesOnCancel
from .repairs import Repairs


class PushedCancels(WakesOnCancel, Repairs):
    """`wait_for_loss` for `PostgresBackend`. The cancel statement notifies `c:<ids>`, which
    the shared LISTEN connection passes to the waiters of those ids (`LossWaiters`); its coming
    up or back wakes every waiter. A cancel made through this backend also wakes its own
    waiters at once: all there is without LISTEN (poll-only, PgBouncer in transaction mode),
    where a cancel made by another process is found at the holder's next heartbeat."""

    @abc.abstractmethod
    async def _listen(self, wait: float) -> None:
        """Have the LISTEN connection up (unless polling), waiting at most `wait` s for it."""

    async def wait_for_loss(self, jobs: Sequence[Job], timeout: float) -> None:
        await self._cancels.wait(jobs, timeout, self._listen)

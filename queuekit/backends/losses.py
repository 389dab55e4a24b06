"""`LossWaiters`: waiters on running jobs' ids that also hear a cancel made just before they
registered, as a worker registers a job only after its claim returns; `CancelsHere` and
`WakesOnCancel`, which push a backend object's own cancels to them."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence

from ..backend import Batch, JobFilter
from ..job import Job, JobStatus
from .waiters import KeyedWaiters, wait_at_most

REMEMBER_SECONDS = 10.0
"""How long a wake-up nobody waited for is kept for a waiter still to come: far longer than a
worker takes from a claim's reply to waiting on its jobs, even on a busy machine."""
READY_SECONDS = 2.0
"""How long a first wait gives the means of being told (a LISTEN connection) to come up."""


class LossWaiters(KeyedWaiters):
    """`KeyedWaiters` that keep each key woken while nobody waits on it for `REMEMBER_SECONDS`:
    the first waiter to register on it then is woken at once, and the key is forgotten (so
    waiting again does not wake again)."""

    def __init__(self) -> None:
        super().__init__()
        self._unheard: OrderedDict[str, float] = OrderedDict()

    @contextlib.contextmanager
    def registered(self, keys: Iterable[str]) -> Iterator[asyncio.Event]:
        keys = list(keys)
        with super().registered(keys) as event:
            self._forget_old()
            for key in keys:
                if self._unheard.pop(key, None) is not None:
                    event.set()
            yield event

    def wake(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        super().wake(keys)
        waited = set(self.waited_on())
        now = time.monotonic()
        for key in keys:
            if key not in waited:
                self._unheard[key] = now
                self._unheard.move_to_end(key)
        self._forget_old()

    def _forget_old(self) -> None:
        oldest = time.monotonic() - REMEMBER_SECONDS
        while self._unheard and next(iter(self._unheard.values())) < oldest:
            self._unheard.popitem(last=False)


class CancelsHere:
    """Cancels made through one backend object, pushed to the waiters of that object (for
    SQLite, whose other processes cannot be signalled, and for PostgreSQL without LISTEN).
    `waiters` may be woken from elsewhere too (a LISTEN connection)."""

    def __init__(self, waiters: LossWaiters) -> None:
        self.waiters = waiters
        self._bulk_at = -math.inf
        """When the last bulk cancel of running jobs ended (epoch seconds)."""
        self._bulk_heard: frozenset[str] = frozenset()
        """The jobs waited on since: a bulk cancel names no job, so a job claimed before it
        but not yet waited on then is woken on its first wait."""

    def cancelled(self, job: Job | None) -> None:
        """`cancel` returned `job`."""
        if job is not None and job.status == JobStatus.CANCELLED:
            self.waiters.wake([job.id])

    def cancelled_in_bulk(self, where: JobFilter, batch: Batch) -> None:
        """`cancel_batch` on `where` returned `batch`."""
        if batch.changed and where.status == JobStatus.RUNNING:
            self._bulk_at = time.time()
            self._bulk_heard = frozenset(self.waiters.waited_on())
            self.waiters.wake_all()

    async def wait(
        self,
        jobs: Sequence[Job],
        timeout: float,
        ready: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        """`Backend.wait_for_loss` on `waiters`; `ready(seconds)`, once registered, brings up
        what else wakes them (the LISTEN connection), waiting for it at most that long."""
        unheard = {
            job.id
            for job in jobs
            if job.started_at is not None
            and job.started_at.timestamp() <= self._bulk_at
            and job.id not in self._bulk_heard
        }
        if unheard:
            self._bulk_heard |= unheard
            return
        deadline = time.monotonic() + timeout
        with self.waiters.registered(job.id for job in jobs) as event:
            if ready is not None:
                await ready(min(timeout, READY_SECONDS))
            await wait_at_most(event, deadline - time.monotonic())


class WakesOnCancel:
    """`cancel` and `cancel_batch` that wake this backend object's waiters of the jobs they
    cancelled (`_cancels`), for the backends that have no push or may lack one (SQLite,
    PostgreSQL without LISTEN). A mixin put before the backend's class that writes the
    cancels, which its `super()` calls reach (mypy cannot see that one, hence the ignores)."""

    _cancels: CancelsHere

    async def cancel(self, job_id: str) -> Job | None:
        job: Job | None = await super().cancel(job_id)  # type: ignore[misc]
        self._cancels.cancelled(job)
        return job

    async def cancel_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        batch: Batch = await super().cancel_batch(  # type: ignore[misc]
            where, after=after, limit=limit
        )
        self._cancels.cancelled_in_bulk(where, batch)
        return batch

"""Testing without a server: run a task through a real worker on a memory queue, or drive a
`Scheduler` with a `ManualClock`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar, cast

import anyio

from .backends.memory import MemoryBackend
from .context import JobContext
from .errors import InvalidOptionError, JobFailedError
from .queue import Queue
from .tasks import Task
from .worker import JobReport, Worker

P = ParamSpec("P")
R = TypeVar("R")


@asynccontextmanager
async def memory_queue() -> AsyncIterator[Queue]:
    """A fresh in-memory queue, open for the block."""
    async with Queue(MemoryBackend()) as queue:
        yield queue


async def run(task: Task[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Enqueue one run of `task` on a memory queue, process it with a worker, return its result.

    The job gets one attempt; an exception from the handler is raised here as it was raised
    there, so `pytest.raises` works on it. The result has been through JSON, as in production.
    """
    if task.registry is None:
        raise InvalidOptionError(f"task {task.name!r} is not registered in a Tasks registry")
    errors: list[BaseException] = []

    async def keep_error(context: JobContext, report: JobReport) -> None:
        if report.error is not None:
            errors.append(report.error)

    async with memory_queue() as queue:
        job = await task.with_options(max_attempts=1).enqueue(queue, *args, **kwargs)
        await Worker(
            queue, task.registry, queues=[job.queue], after_job=[keep_error]
        ).run_until_empty()
        try:
            return cast(R, await queue.result(job.id, timeout=0))
        except JobFailedError:
            if errors:
                raise errors[0] from None
            raise


@dataclass(eq=False)
class _Sleeper:
    deadline: datetime
    event: anyio.Event = field(default_factory=anyio.Event)


class ManualClock:
    """A clock that moves only when told: `set(...)`, `advance(...)`. For `Scheduler(clock=)`."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime(2024, 1, 1, tzinfo=UTC)).astimezone(UTC)
        self._sleepers: list[_Sleeper] = []
        self._changed: anyio.Event | None = None

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, deadline: datetime) -> None:
        while self._now < deadline:
            sleeper = _Sleeper(deadline)
            self._sleepers.append(sleeper)
            if self._changed is not None:
                self._changed.set()
                self._changed = None
            try:
                await sleeper.event.wait()
            finally:
                self._sleepers.remove(sleeper)

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (backwards too), waking every sleeper whose deadline has come."""
        if moment.tzinfo is None:
            raise ValueError("ManualClock takes timezone-aware datetimes")
        self._now = moment.astimezone(UTC)
        for sleeper in self._sleepers:
            if sleeper.deadline <= self._now:
                sleeper.event.set()

    def advance(self, delta: float | timedelta) -> None:
        self.set(self._now + (delta if isinstance(delta, timedelta) else timedelta(seconds=delta)))

    @property
    def sleeping(self) -> list[datetime]:
        """Deadlines of the sleepers still waiting."""
        return [s.deadline for s in self._sleepers if s.deadline > self._now]

    async def wait_for_sleepers(self, count: int, *, timeout: float = 10.0) -> None:
        """Wait (in real time) until at least `count` tasks sleep on this clock."""
        with anyio.fail_after(timeout):
            while len(self.sleeping) < count:
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()


__all__ = ["ManualClock", "memory_queue", "run"]

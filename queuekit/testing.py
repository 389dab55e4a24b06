"""Testing without a server: run a task through a real worker on a memory queue, under injected
faults to prove it idempotent, or drive a `Scheduler` with a `ManualClock`."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, ParamSpec, TypeVar, cast

import anyio

from .backends.memory import MemoryBackend
from .context import JobContext
from .errors import InvalidOptionError, JobFailedError
from .job import Attempt, Job, JobStatus
from .queue import Queue
from .tasks import Task
from .worker import JobReport, Outcome, Worker

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


class Fault(enum.Enum):
    """A fault `run_with_faults` injects into one attempt; each makes the job run again."""

    CRASH_AFTER_HANDLER = "crash after handler"
    """The handler returns, then the process dies before the completion is recorded: the
    lease expires, the job is rescued and runs again with all the side effects done."""
    LEASE_LOST = "lease lost"
    """The lease is lost as the handler starts (it expired and the job was rescued): the
    worker stops the handler at its first await, and the job runs again."""
    DUPLICATE_DELIVERY = "duplicate delivery"
    """The job is delivered again as the handler starts (its lease expired unnoticed, say in
    a long pause): a second attempt starts first and runs beside it; this one's outcome is
    then refused."""


@dataclass(frozen=True)
class FaultRun(Generic[R]):
    """What `run_with_faults` saw: the job's result and final state, and every attempt's
    outcome in the order the attempts ended."""

    result: R
    job: Job
    outcomes: list[Outcome]


FAULT_LEASE = 3600.0
"""The worker's lease under `run_with_faults`: its heartbeat never runs; the manual clock
jumps past the lease when a fault expires it."""


class _FaultyBackend(MemoryBackend):
    """A memory backend on a manual clock that drops the completions of crashed attempts."""

    def __init__(self, clock: ManualClock, crashing: set[int]) -> None:
        super().__init__(clock=lambda: clock.now().timestamp())
        self.clock = clock
        self._crashing = crashing

    async def complete(self, attempt: Attempt, result_json: str | None = None) -> JobStatus | None:
        if attempt.number in self._crashing:
            return None  # the process died first: nothing recorded, the lease runs on
        return await super().complete(attempt, result_json)

    async def expire_leases(self) -> None:
        """Move the clock past the running attempt's lease and rescue the job."""
        self.clock.advance(FAULT_LEASE)
        await self.rescue()


async def run_with_faults(
    task: Task[P, R], faults: Sequence[Fault], /, *args: P.args, **kwargs: P.kwargs
) -> FaultRun[R]:
    """Run `task` once per fault, the fault injected into that attempt, then once clean.

    The job gets `len(faults) + 1` attempts on a memory queue with a manual clock; attempt
    *n* suffers `faults[n - 1]`. An exception from the handler is raised here, as `run` does.
    Assert on your own side effects afterwards: a handler idempotent under at-least-once
    delivery leaves the same state as one clean run.
    """
    if task.registry is None:
        raise InvalidOptionError(f"task {task.name!r} is not registered in a Tasks registry")
    by_attempt = dict(enumerate(faults, start=1))
    crashing = {n for n, fault in by_attempt.items() if fault is Fault.CRASH_AFTER_HANDLER}
    backend = _FaultyBackend(ManualClock(), crashing)
    reports: list[JobReport] = []
    reported = anyio.Event()

    began = {n: anyio.Event() for n in range(1, len(faults) + 2)}

    async def inject(context: JobContext) -> None:
        number = context.job.attempts
        began[number].set()
        fault = by_attempt.get(number)
        if fault in (Fault.LEASE_LOST, Fault.DUPLICATE_DELIVERY):
            await backend.expire_leases()
        if fault is Fault.LEASE_LOST:
            worker._lose(context.job.attempt)
        elif fault is Fault.DUPLICATE_DELIVERY:
            await began[number + 1].wait()  # the duplicate runs beside this attempt

    async def after(context: JobContext, report: JobReport) -> None:
        nonlocal reported
        if by_attempt.get(context.job.attempts) is Fault.CRASH_AFTER_HANDLER:
            await backend.expire_leases()
        reports.append(report)
        reported.set()
        reported = anyio.Event()

    async with Queue(backend) as queue:
        job = await task.with_options(max_attempts=len(faults) + 1).enqueue(queue, *args, **kwargs)
        worker = Worker(
            queue,
            task.registry,
            queues=[job.queue],
            lease=FAULT_LEASE,
            rescue_interval=FAULT_LEASE,
            before_job=[inject],
            after_job=[after],
        )
        errors: list[BaseException] = []
        async with worker:
            while not errors:
                await reported.wait()
                errors = [report.error for report in reports if report.error is not None]
                stored = await queue.get_job(job.id)
                if stored.status.is_terminal and len(reports) == stored.attempts:
                    break
            worker.stop()
        if errors:
            raise errors[0]
        result = cast(R, await queue.result(job.id, timeout=0))
        return FaultRun(result, stored, [report.outcome for report in reports])


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


__all__ = ["Fault", "FaultRun", "ManualClock", "memory_queue", "run", "run_with_faults"]

"""Shared helpers for the scheduler tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from queuekit import Backend, Job, Queue, Schedule, Scheduler
from queuekit.testing import ManualClock

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


async def all_jobs(queue: Queue) -> list[Job]:
    jobs: list[Job] = []
    cursor = None
    while True:
        page = await queue.list_jobs(limit=1000, cursor=cursor)
        jobs += page.jobs
        if page.next_cursor is None:
            return jobs
        cursor = page.next_cursor


def parse_slot(text: str) -> datetime:
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(text, pattern).replace(tzinfo=UTC)


def fired_slots(schedule: Schedule, jobs: list[Job]) -> list[datetime]:
    """The slots of `schedule`'s jobs, sorted; asserts no slot has two jobs."""
    prefix = f"schedule:{schedule.name}:"
    slots = sorted(parse_slot(job.id[len(prefix) :]) for job in jobs if job.id.startswith(prefix))
    assert len(set(slots)) == len(slots), "a slot has two jobs"
    return slots


def assert_consecutive(slots: list[datetime], period: timedelta) -> None:
    """Every slot from the first to the last, none missing, none extra."""
    assert slots, "no slot fired"
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(gap == period for gap in gaps), f"slots are not consecutive: {gaps}"


def assert_consecutive_or_stood_in(
    slots: list[datetime], period: timedelta, caplog: pytest.LogCaptureFixture
) -> None:
    """As `assert_consecutive`, for schedulers on the wall clock (which need WARNING captured).

    On a loaded machine every scheduler can fall behind a short period: then a later slot's
    job stands in for the missed ones, and the scheduler says so in its log. A missing slot
    passes only if that record covers it.
    """
    assert slots, "no slot fired"
    stood_in: dict[datetime, list[tuple[datetime, datetime]]] = {}
    for record in caplog.records:
        if record.name == "queuekit.scheduler" and "stands in for them" in str(record.msg):
            assert isinstance(record.args, tuple)
            first, last, slot = (parse_slot(str(text)) for text in record.args[1:4])
            stood_in.setdefault(slot, []).append((first, last))
    for earlier, later in itertools.pairwise(slots):
        missing = earlier + period
        while missing < later:
            covered = any(first <= missing <= last for first, last in stood_in.get(later, []))
            assert covered, f"slot {missing} has no job, and {later} did not stand in for it"
            missing += period
        assert missing == later, f"slot {later} is not {period} after {earlier}"


async def complete_all(backend: Backend, queue: str = "default") -> int:
    """Claim and complete every ready job of `queue`, as a worker would."""
    done = 0
    while jobs := await backend.claim({queue: 100}, limit=100, lease=30, worker_id="test"):
        for job in jobs:
            assert await backend.complete(job.attempt)
            done += 1
    return done


async def race(
    make: Callable[[], Backend],
    schedule: Schedule,
    clocks: list[ManualClock],
    *,
    period: float,
    steps: int,
) -> tuple[list[Scheduler], list[Job]]:
    """One scheduler per clock, each with its own client of one store, for `steps` periods.

    At each step every scheduler waits for its clock, the jobs fired so far are completed,
    and every clock moves on `period` seconds at the same instant, so the schedulers race.
    Returns the schedulers and every job stored.
    """
    queues = [Queue(make()) for _ in clocks]
    schedulers = [
        Scheduler(queue, [schedule], clock=clock)
        for queue, clock in zip(queues, clocks, strict=True)
    ]
    async with queues[0]:
        for queue in queues[1:]:
            await queue.open()
        try:
            async with anyio.create_task_group() as group:
                for scheduler in schedulers:
                    group.start_soon(scheduler.run)
                for _ in range(steps):
                    for clock in clocks:
                        await clock.wait_for_sleepers(1)
                    await complete_all(queues[0].backend)
                    for clock in clocks:
                        clock.advance(period)
                for clock in clocks:
                    await clock.wait_for_sleepers(1)
                group.cancel_scope.cancel()
            return schedulers, await all_jobs(queues[0])
        finally:
            for queue in queues[1:]:
                await queue.close()

"""Shared helpers for the scheduler tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from queuekit import Backend, Job, Queue, Schedule

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


async def complete_all(backend: Backend, queue: str = "default") -> int:
    """Claim and complete every ready job of `queue`, as a worker would."""
    done = 0
    while jobs := await backend.claim({queue: 100}, limit=100, lease=30, worker_id="test"):
        for job in jobs:
            assert await backend.complete(job.attempt)
            done += 1
    return done

"""Where a schedule stands: its latest due slot, and its last run as the backend remembers it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from ..backend import Backend
from ..job import Job
from .schedule import Schedule

PROBE_DEPTH = 1024
"""How many slots back a starting scheduler looks for its schedule's last run."""
PROBE_EACH = 16
"""Of those, how many recent slots it looks at one by one (then 32, 64, 128… back)."""


def latest_due(schedule: Schedule, now: datetime, after: datetime | None) -> datetime | None:
    """The latest slot after `after` whose fire time (slot + jitter) has come."""
    slot = schedule.trigger.latest_at_or_before(now)
    candidates: Iterator[datetime] = iter(())
    if slot is not None and schedule.fire_time(slot) > now:
        candidates = schedule.trigger.before(slot)
        slot = next(candidates, None)
    for _ in range(PROBE_DEPTH):
        if slot is None or (after is not None and slot <= after):
            return None
        if schedule.fire_time(slot) <= now:
            return slot
        slot = next(candidates, None)
    return None


async def last_run_before(
    backend: Backend, schedule: Schedule, latest: datetime
) -> tuple[datetime, Job] | None:
    """The newest slot before `latest` that has a job, looking back up to PROBE_DEPTH slots.

    It looks at each of the last PROBE_EACH slots, then 32, 64, 128… back, then
    binary-searches between the last miss and the first hit.
    """
    earlier = _Slots(schedule.trigger.before(latest))
    miss, hit = -1, None
    index = 0
    while index < PROBE_DEPTH:
        slot = earlier.get(index)
        if slot is None:
            break
        job = await backend.get_job(schedule.job_id(slot))
        if job is not None:
            hit = (index, slot, job)
            break
        miss = index
        index = index + 1 if index + 1 < PROBE_EACH else 2 * index + 1
    if hit is None:
        return None
    index, slot, job = hit
    while index - miss > 1:
        middle = (index + miss) // 2
        candidate = earlier.get(middle)
        assert candidate is not None
        found = await backend.get_job(schedule.job_id(candidate))
        if found is not None:
            index, slot, job = middle, candidate, found
        else:
            miss = middle
    return slot, job


class _Slots:
    """A lazily read list of slots from an iterator."""

    def __init__(self, slots: Iterator[datetime]) -> None:
        self._slots = slots
        self._seen: list[datetime] = []

    def get(self, index: int) -> datetime | None:
        while len(self._seen) <= index:
            slot = next(self._slots, None)
            if slot is None:
                return None
            self._seen.append(slot)
        return self._seen[index]


__all__ = ["PROBE_DEPTH", "PROBE_EACH", "last_run_before", "latest_due"]

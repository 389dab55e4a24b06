"""What a `Scheduler` reports of each schedule: its last fire, its skips and counts."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from .schedule import Schedule


class SkipReason(enum.StrEnum):
    MISSED = "missed"
    """The slot passed while no scheduler ran (or the backend was down) and `missed="skip"`."""
    OVERLAP = "overlap"
    """The previous job was still unfinished and `overlap="skip"`."""


@dataclass(frozen=True, slots=True)
class Fire:
    """The last slot of a schedule that has a job."""

    slot: datetime
    job_id: str
    seen_at: datetime
    """When this scheduler enqueued it or found it (its clock)."""
    by_this_scheduler: bool
    """True if this scheduler's enqueue stored the job; False if the slot was fired by another
    replica (before it looked, or racing it) or before a restart."""
    coalesced: int = 0
    """How many missed slots before `slot` this one job stands in for (`Missed.RUN_ONCE`)."""


@dataclass(frozen=True, slots=True)
class Skip:
    """Slots a schedule skipped: `count` of them, from `first` to `last`."""

    first: datetime
    last: datetime
    count: int
    reason: SkipReason
    job_id: str | None = None
    """For an overlap: the unfinished job that caused it."""


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """A schedule as one `Scheduler` sees it: `scheduler.schedules` returns these."""

    schedule: Schedule
    next_slot: datetime | None
    next_run: datetime | None
    """When the next slot fires (the slot plus its jitter)."""
    last_fire: Fire | None
    skipped: tuple[Skip, ...]
    """The latest skip records, oldest first."""
    fired: int
    """Jobs this scheduler stored (not those a racing replica stored first)."""
    skipped_slots: int
    """Slots this scheduler skipped, in all."""
    last_error: str | None
    """The error of the last attempt to fire, if it failed (cleared by the next success)."""

    @property
    def name(self) -> str:
        return self.schedule.name


__all__ = ["Fire", "ScheduleState", "Skip", "SkipReason"]

"""`Retention`: how long finished jobs are kept; every worker applies it (see `Worker`)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from .activity import KEEP_SECONDS
from .errors import InvalidOptionError
from .job import JobStatus
from .validation import check_seconds

if TYPE_CHECKING:
    from .queue import Queue

DEFAULT_INTERVAL = 60.0
"""Seconds between a worker's prunes (jittered, so that workers take turns)."""


class Retention:
    """How long a job is kept after it finished, per terminal state: seconds or a `timedelta`;
    None (the default for every state) keeps it for ever.

    `Worker(..., retention=Retention(completed=timedelta(days=1), dead=timedelta(days=30)))`
    makes the worker prune, about every `interval` seconds, the jobs of each state that
    finished longer ago than that state's retention, in the backend's bounded batches. There
    is no leader and no cron job: several workers pruning at once only share the work, and
    workers with different retentions on one backend each apply their own (the shortest
    wins). A schedule recognises a slot it already fired by that slot's job (see
    docs/scheduler.md): where schedules run on several hosts, keep completed jobs for minutes
    at least.

    `activity` is how long each queue's activity by minute is kept (see `queuekit.activity`):
    a day unless given, at least a minute.
    """

    __slots__ = ("activity", "ages", "interval")

    def __init__(
        self,
        *,
        completed: float | timedelta | None = None,
        cancelled: float | timedelta | None = None,
        dead: float | timedelta | None = None,
        activity: float | timedelta = KEEP_SECONDS,
        interval: float | timedelta = DEFAULT_INTERVAL,
    ) -> None:
        kept = {
            JobStatus.COMPLETED: completed,
            JobStatus.CANCELLED: cancelled,
            JobStatus.DEAD: dead,
        }
        self.ages: dict[JobStatus, float] = {
            status: check_seconds(age, f"the retention of {status.value} jobs")
            for status, age in kept.items()
            if age is not None
        }
        """Each state that has a retention, with its seconds."""
        self.interval = check_seconds(interval, "the retention interval", allow_zero=False)
        self.activity = check_seconds(activity, "the retention of activity")
        if self.activity < 60:
            raise InvalidOptionError("the retention of activity must be a minute or more")

    def __repr__(self) -> str:
        kept = ", ".join(f"{status.value}={age:g}" for status, age in self.ages.items())
        return (
            f"Retention({kept}{', ' if kept else ''}activity={self.activity:g}, "
            f"interval={self.interval:g})"
        )

    async def apply(self, queue: Queue) -> int:
        """Delete, once, every job older than its state's retention; how many were deleted."""
        deleted = 0
        for status, age in self.ages.items():
            deleted += await queue.prune(older_than=age, statuses=[status])
        return deleted

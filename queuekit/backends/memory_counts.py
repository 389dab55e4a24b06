"""The counts of one queue of the memory backend, read from its job records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..job import CLAIMABLE_STATUSES, JobStatus
from ..stats import SUCCESS_WINDOW_SECONDS, QueueCounts


def count_queue(records: Iterable[dict[str, Any]], queue: str, now: float) -> QueueCounts:
    """`Backend.stats` of `queue` over every job record, at `now`."""
    counts = dict.fromkeys(JobStatus, 0)
    scheduled = completed_recently = dead_recently = expired = 0
    oldest: float | None = None
    for record in records:
        if record["queue"] != queue:
            continue
        status = record["status"]
        counts[status] += 1
        if status in CLAIMABLE_STATUSES:
            if record["scheduled_at"] > now:
                scheduled += 1
            elif oldest is None or record["scheduled_at"] < oldest:
                oldest = record["scheduled_at"]
        elif status == JobStatus.RUNNING and record["lease_expires_at"] <= now:
            expired += 1
        elif (
            record["finished_at"] is not None
            and record["finished_at"] > now - SUCCESS_WINDOW_SECONDS
        ):
            completed_recently += status == JobStatus.COMPLETED
            dead_recently += status == JobStatus.DEAD
    return QueueCounts(
        waiting=counts[JobStatus.WAITING],
        pending=counts[JobStatus.PENDING],
        scheduled=scheduled,
        running=counts[JobStatus.RUNNING],
        completed=counts[JobStatus.COMPLETED],
        failed=counts[JobStatus.FAILED],
        dead=counts[JobStatus.DEAD],
        cancelled=counts[JobStatus.CANCELLED],
        oldest_ready_age=None if oldest is None else now - oldest,
        completed_recently=completed_recently,
        dead_recently=dead_recently,
        expired_leases=expired,
    )

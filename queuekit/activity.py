"""Per-queue activity by minute (jobs enqueued, completed, failed, dead; wait and run times;
the queue's depth)."""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .outcomes import JobReport, Outcome

if TYPE_CHECKING:
    from .backend import Backend
    from .job import Job, NewJob

logger = logging.getLogger("queuekit.activity")

BUCKET_BOUNDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
"""Upper bounds, in seconds, of the buckets wait and run times are counted in; one more
bucket counts every time beyond the last bound."""
BUCKETS = len(BUCKET_BOUNDS) + 1
NO_TIMES: tuple[int, ...] = (0,) * BUCKETS
KEEP_SECONDS = 86_400.0
"""How long a backend keeps a queue's minutes unless told otherwise: a day."""
MAX_MINUTES = 7 * 24 * 60
"""The most minutes one read returns: a week."""
WRITE_EVERY = 10.0
"""Seconds between two writes of one process's counts to the backend."""
DEPTH_CAP = 10_000
"""The most ready jobs a depth sample counts: a deeper queue reads as this many, so a huge
backlog costs a bounded count."""


def bucket_of(seconds: float) -> int:
    """The bucket a wait or run of `seconds` is counted in."""
    return bisect.bisect_left(BUCKET_BOUNDS, seconds)


def added(left: Sequence[int], right: Sequence[int]) -> tuple[int, ...]:
    """Two bucket counts added bucket by bucket (a missing bucket counts 0)."""
    width = max(len(left), len(right))
    return tuple(
        (left[i] if i < len(left) else 0) + (right[i] if i < len(right) else 0)
        for i in range(width)
    )


def percentile(buckets: Sequence[int], fraction: float) -> float | None:
    """The time below which `fraction` of the counted times fall, interpolated inside its
    bucket (times past the last bound count as the last bound); None when nothing counted."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index >= len(BUCKET_BOUNDS):
                return BUCKET_BOUNDS[-1]
            low = BUCKET_BOUNDS[index - 1] if index else 0.0
            return low + (BUCKET_BOUNDS[index] - low) * (rank - seen) / count
        seen += count
    return BUCKET_BOUNDS[-1]


@dataclass(frozen=True, slots=True)
class ActivityCounts:
    """What one process adds to a queue's current minute."""

    queue: str
    enqueued: int = 0
    completed: int = 0
    failed: int = 0
    """Attempts that failed with a retry left."""
    dead: int = 0
    wait: tuple[int, ...] = NO_TIMES
    """Jobs started, by bucket of how long they waited once due (`bucket_of`)."""
    run: tuple[int, ...] = NO_TIMES
    """Attempts ended, by bucket of how long they ran."""

    def __add__(self, other: ActivityCounts) -> ActivityCounts:
        return ActivityCounts(
            self.queue,
            self.enqueued + other.enqueued,
            self.completed + other.completed,
            self.failed + other.failed,
            self.dead + other.dead,
            added(self.wait, other.wait),
            added(self.run, other.run),
        )

    def at(self, start: datetime, depth: int | None = None) -> Minute:
        """These counts as the minute that began at `start`, with its depth sample."""
        return Minute(
            self.queue,
            start,
            self.enqueued,
            self.completed,
            self.failed,
            self.dead,
            self.wait,
            self.run,
            depth,
        )


@dataclass(frozen=True, slots=True)
class Minute:
    """One queue's activity in one minute of the backend's clock."""

    queue: str
    at: datetime
    """The minute's start (UTC)."""
    enqueued: int = 0
    completed: int = 0
    failed: int = 0
    dead: int = 0
    wait: tuple[int, ...] = NO_TIMES
    run: tuple[int, ...] = NO_TIMES
    depth: int | None = None
    """The queue's ready jobs (claimable and due; at most `DEPTH_CAP`) when the minute's first
    write came, counted by that write alone; None if that count was not taken (a write that
    failed midway, or a minute kept before depths were). Depth changes only with activity, so a
    minute without a sample reads as the last one before it (`depths`)."""

    @property
    def counts(self) -> ActivityCounts:
        """The minute's counts, to add others to."""
        return ActivityCounts(
            self.queue, self.enqueued, self.completed, self.failed, self.dead, self.wait, self.run
        )

    @property
    def wait_p50(self) -> float | None:
        return percentile(self.wait, 0.5)

    @property
    def wait_p95(self) -> float | None:
        return percentile(self.wait, 0.95)

    @property
    def run_p50(self) -> float | None:
        return percentile(self.run, 0.5)

    @property
    def run_p95(self) -> float | None:
        return percentile(self.run, 0.95)


def depths(minutes: Sequence[Minute | None]) -> list[int | None]:
    """Each minute's depth, a minute without a sample (or without a row, None) carrying the
    last sample before it forward; None before the first sample."""
    found: list[int | None] = []
    last: int | None = None
    for minute in minutes:
        if minute is not None and minute.depth is not None:
            last = minute.depth
        found.append(last)
    return found


class _Tally:
    """One queue's counts since the last write, counted in place (a job costs no allocation)."""

    __slots__ = ("completed", "dead", "enqueued", "failed", "run", "wait")

    def __init__(self) -> None:
        self.enqueued = self.completed = self.failed = self.dead = 0
        self.wait = [0] * BUCKETS
        self.run = [0] * BUCKETS

    def counts(self, queue: str) -> ActivityCounts:
        return ActivityCounts(
            queue,
            self.enqueued,
            self.completed,
            self.failed,
            self.dead,
            tuple(self.wait),
            tuple(self.run),
        )


class ActivityRecorder:
    """Counts one process's enqueues and ended attempts, and adds them to the backend's
    current minute at most every `WRITE_EVERY` seconds: a write per process, not per job.

    A write that fails keeps its counts for the next one. Counts of the last seconds before a
    process stops are written by `write` (the worker and `Queue.close` call it); a process
    that is killed loses them, which a chart can bear.
    """

    def __init__(self, backend: Backend, keep: float = KEEP_SECONDS) -> None:
        self.backend = backend
        self.keep = keep
        """Seconds the backend keeps the minutes of the queues this process writes to."""
        self._tallies: dict[str, _Tally] = {}
        self._unwritten: list[ActivityCounts] = []
        """Counts a failed write left, added to the next."""
        self._written_at = time.monotonic()

    def _tally(self, queue: str) -> _Tally:
        tally = self._tallies.get(queue)
        if tally is None:
            tally = self._tallies[queue] = _Tally()
        return tally

    def enqueued(self, requests: Sequence[NewJob], stored: Sequence[Job]) -> None:
        """Count the jobs an enqueue stored (not those a unique key returned instead)."""
        requested = {request.id for request in requests}
        for job in stored:
            if job.id in requested:
                self._tally(job.queue).enqueued += 1

    def attempt_ended(self, report: JobReport) -> None:
        """Count an attempt's outcome, its run time and how long its job waited once due."""
        job, outcome = report.job, report.outcome
        tally = self._tally(job.queue)
        if job.started_at is not None:
            waited = (job.started_at - job.scheduled_at).total_seconds()
            tally.wait[bucket_of(max(0.0, waited))] += 1
        tally.run[bucket_of(report.duration)] += 1
        if outcome is Outcome.COMPLETED:
            tally.completed += 1
        elif outcome is Outcome.FAILED:
            tally.failed += 1
        elif outcome is Outcome.DEAD:
            tally.dead += 1

    async def write_if_due(self) -> None:
        """`write`, if the last one was `WRITE_EVERY` seconds ago or more."""
        if time.monotonic() - self._written_at >= WRITE_EVERY:
            await self.write()

    async def write(self) -> int:
        """Add what was counted to the backend's current minutes now; how many queues.
        Never raises: counts the backend did not take wait for the next write."""
        self._written_at = time.monotonic()
        by_queue = {queue: tally.counts(queue) for queue, tally in self._tallies.items()}
        self._tallies = {}
        for entry in self._unwritten:
            known = by_queue.get(entry.queue)
            by_queue[entry.queue] = entry if known is None else known + entry
        self._unwritten = []
        if not by_queue:
            return 0
        counts = list(by_queue.values())
        try:
            await self.backend.add_activity(counts, keep=self.keep)
        except Exception as exc:
            logger.warning("activity counts not written; kept for the next write: %s", exc)
            self._unwritten = counts
            return 0
        return len(counts)

"""`QueueStats`: a queue's counts per state, its latency signal, and its health score."""

from __future__ import annotations

from dataclasses import dataclass

SUCCESS_WINDOW_SECONDS = 3600.0
"""Success rate counts jobs that finished within this many seconds (SQLite and PostgreSQL count
whole minutes of their kept counts: up to a minute more)."""
READY_AGE_TARGET_SECONDS = 60.0
"""A ready job older than this lowers health in proportion."""


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """What a backend measures for one queue, all on its own clock."""

    waiting: int = 0
    """Jobs waiting for their parents."""
    pending: int = 0
    scheduled: int = 0
    """Of `pending` and `failed`, how many wait for a future `scheduled_at`."""
    running: int = 0
    completed: int = 0
    failed: int = 0
    dead: int = 0
    cancelled: int = 0
    oldest_ready_age: float | None = None
    """Seconds since the longest-waiting claimable job became claimable."""
    completed_recently: int = 0
    dead_recently: int = 0
    expired_leases: int = 0
    """Running jobs whose lease has run out: their worker is probably gone."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A queue's health at one moment.

    `health` is an integer from 0 to 100:

        health = 100 × success_rate × freshness × liveness

    - `success_rate`: completed / (completed + dead) among jobs that finished within the last
      hour; 1.0 when none finished.
    - `freshness`: 1.0 while the oldest ready job has waited at most 60 s, then 60 / its age,
      so a job waiting two minutes halves health. A paused queue's jobs wait by design, so
      its freshness stays 1.0: paused is not unhealthy.
    - `liveness`: the share of running jobs whose lease is still valid; 1.0 with none running.
    """

    queue: str
    waiting: int
    pending: int
    scheduled: int
    ready: int
    running: int
    completed: int
    failed: int
    dead: int
    cancelled: int
    oldest_ready_age: float | None
    success_rate: float | None
    health: int
    paused: bool = False
    """Whether workers are kept from claiming this queue's jobs (`Queue.pause`)."""

    @property
    def total(self) -> int:
        return (
            self.waiting
            + self.pending
            + self.running
            + self.completed
            + self.failed
            + self.dead
            + self.cancelled
        )

    @classmethod
    def from_counts(cls, queue: str, counts: QueueCounts, *, paused: bool = False) -> QueueStats:
        finished = counts.completed_recently + counts.dead_recently
        success_rate = counts.completed_recently / finished if finished else None
        age = counts.oldest_ready_age
        freshness = (
            1.0
            if paused or age is None or age <= READY_AGE_TARGET_SECONDS
            else (READY_AGE_TARGET_SECONDS / age)
        )
        liveness = 1.0 - counts.expired_leases / counts.running if counts.running else 1.0
        health = 100.0 * (1.0 if success_rate is None else success_rate) * freshness * liveness
        return cls(
            queue=queue,
            waiting=counts.waiting,
            pending=counts.pending,
            scheduled=counts.scheduled,
            ready=counts.pending + counts.failed - counts.scheduled,
            running=counts.running,
            completed=counts.completed,
            failed=counts.failed,
            dead=counts.dead,
            cancelled=counts.cancelled,
            oldest_ready_age=age,
            success_rate=success_rate,
            health=max(0, min(100, round(health))),
            paused=paused,
        )

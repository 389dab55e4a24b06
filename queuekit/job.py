"""The job model: `Job`, its states, priorities, and the requests that create and page jobs."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

JSON: TypeAlias = Any
"""A JSON value: dict, list, str, int, float, bool or None."""


class JobStatus(enum.StrEnum):
    """Where a job is in its life; `completed`, `dead` and `cancelled` are terminal."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.DEAD, JobStatus.CANCELLED})
CLAIMABLE_STATUSES = frozenset({JobStatus.PENDING, JobStatus.FAILED})


class Priority(enum.IntEnum):
    """Named priorities; any int from 0 to 1000 is allowed, higher runs first."""

    LOW = 0
    NORMAL = 10
    HIGH = 20
    CRITICAL = 30


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt at a job: what every call on a running job names.

    `token` fences: each claim gives the job a new random lease token, so no two claims of a
    job id share one (not after a replay, a cancel, or a delete and a re-enqueue with the same
    id), and a late worker's calls match nothing. `number` is the user-facing attempt count.
    """

    job_id: str
    number: int
    token: str


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored; every timestamp comes from the backend's clock (UTC, aware)."""

    id: str
    queue: str
    type: str
    payload: JSON
    priority: int
    status: JobStatus
    attempts: int
    max_attempts: int
    created_at: datetime
    scheduled_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_expires_at: datetime | None = None
    worker_id: str | None = None
    """The worker that claimed the job last; kept after that attempt ends, cleared by replay."""
    last_error: str | None = None
    unique_key: str | None = None
    limit_key: str | None = None
    """The key the queue's per-key limits count this job under (a tenant, an account)."""
    result: JSON = None
    headers: dict[str, str] = field(default_factory=dict)
    """Text metadata beside the payload, such as the enqueuer's trace context; a handler gets
    only the payload as arguments, and the headers from `current_job().job.headers`."""
    lease_token: str | None = field(default=None, repr=False)
    """The fencing token of the job's latest claim (see `Attempt`), None before its first;
    handlers read it as `current_job().lease_token`; the API and the dashboard never show it."""

    @property
    def attempt(self) -> Attempt:
        """The attempt this snapshot of the job belongs to (one that fences nothing when the
        job was never claimed)."""
        return Attempt(self.id, self.attempts, self.lease_token or "")


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated request to enqueue one job; build it with `queuekit.new_job`."""

    id: str
    queue: str
    type: str
    payload_json: str
    priority: int
    max_attempts: int
    delay: float = 0.0
    """Seconds after the backend's `now` at which the job becomes claimable."""
    run_at: datetime | None = None
    """An absolute time instead of `delay`."""
    unique_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    limit_key: str | None = None

    @property
    def headers_json(self) -> str | None:
        """The headers as stored: compact JSON text, or None when there are none."""
        if not self.headers:
            return None
        return json.dumps(self.headers, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of `list_jobs`, newest first; pass `next_cursor` back for the next page."""

    jobs: list[Job] = field(default_factory=list)
    next_cursor: str | None = None

"""The job model: `Job`, its states, priorities, and the requests that create and page jobs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from .jsontext import compact_json

JSON: TypeAlias = Any
"""A JSON value: dict, list, str, int, float, bool or None."""


class JobStatus(enum.StrEnum):
    """Where a job is in its life; `completed`, `dead` and `cancelled` are terminal."""

    WAITING = "waiting"
    """Waits for its parents (`Job.parents`) to finish; never claimed in this state."""
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
LIVE_STATUSES = frozenset(
    {JobStatus.WAITING, JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED}
)
"""The states in which a job always holds its unique key."""
UNSTARTED_STATUSES = frozenset({JobStatus.WAITING, JobStatus.PENDING})
"""The states in which a job holds its debounce key: a job that has started frees it."""
REPLACEABLE_STATUSES = frozenset({JobStatus.WAITING, JobStatus.PENDING, JobStatus.FAILED})
"""The states in which `OnConflict.REPLACE` and a debounce rewrite a holder."""
UNSUCCESSFUL_STATUSES = frozenset({JobStatus.DEAD, JobStatus.CANCELLED})
"""The terminal states of a job that did not complete: what `replay` takes, and what fails
a dependent's edge."""


class Priority(enum.IntEnum):
    """Named priorities; any int from 0 to 1000 is allowed, higher runs first."""

    LOW = 0
    NORMAL = 10
    HIGH = 20
    CRITICAL = 30


class OnFailure(enum.StrEnum):
    """What a dependent does when one of its parents ends dead or cancelled (or is deleted
    before it finished)."""

    CANCEL = "cancel"
    """The dependent is cancelled at once (and its own dependents by their rules); replaying
    that parent brings it back to waiting."""
    RUN = "run"
    """The dependent runs once all its parents have finished, and sees that parent's failure
    among its parents' outcomes."""
    IGNORE = "ignore"
    """The dependent runs once all its parents have finished, as if that parent were not one
    of them: its outcome is left out of the dependent's parents' outcomes."""
    TRIGGER = "trigger"
    """The parent's death starts the dependent: it runs at once when this parent ends dead,
    whatever its other parents do. A parent that completes, is cancelled or is deleted counts
    as finished; once every parent has finished and none ended dead, the dependent is
    cancelled ("no parent died"). A job's edges are all `TRIGGER` or none are: a batch's
    `on_dead` callback (`queuekit.batch`)."""


class OnConflict(enum.StrEnum):
    """What an enqueue does when the job holding its unique key is found."""

    RETURN = "return"
    """Store nothing and return the job holding the key, unchanged."""
    REPLACE = "replace"
    """If the holder has not started, or waits for a retry (waiting, pending or failed), give
    it the new payload and scheduled time; either way return it. A running or finished holder
    is returned unchanged."""


@dataclass(frozen=True, slots=True)
class Parent:
    """A job another one waits for, and what the waiting one does if it fails."""

    job_id: str
    on_failure: OnFailure = OnFailure.CANCEL


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


HISTORY_LIMIT = 20
"""How many attempt records a job keeps (`Job.history`): the latest ones."""
HISTORY_ERROR_CHARS = 1_000
"""An attempt record keeps the first this many characters of its error (the type, the message
and the start of the traceback); `last_error` keeps the latest error whole."""


class AttemptOutcome(enum.StrEnum):
    """How a recorded attempt ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    """Failed with attempts left: the job runs again."""
    DEAD = "dead"
    """Failed with none left, discarded, or its lease expired with none left."""
    SNOOZED = "snoozed"
    """Snoozed, or handed back at shutdown: the attempt did not count."""
    CANCELLED = "cancelled"
    """Cancelled while running."""


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One ended attempt of a job (`Job.history`); times are the backend's clock.

    Written by the same statement or script that ended the attempt: completion, failure,
    snooze, the rescue of an expired lease (error "lease expired") or a cancel.
    """

    number: int
    """The job's attempt count during the attempt: a snoozed attempt's number comes again (a
    snooze does not count), and after a replay numbers start again from 1."""
    worker_id: str
    started_at: datetime
    """When its claim started it."""
    finished_at: datetime
    outcome: AttemptOutcome
    error: str | None = None
    """The error it failed with, cut to `HISTORY_ERROR_CHARS` characters."""


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
    expires_at: datetime | None = None
    """If the job has not started by then, it is cancelled with the error "expired"."""
    progress: float | None = None
    """The fraction (0 to 1) of its work a running handler last reported, written with its
    worker's heartbeat (`current_job().set_progress`); kept after the attempt ends."""
    progress_note: str | None = None
    """The short note reported with `progress`."""
    output: JSON = None
    """Partial output a running handler last reported (`current_job().set_output`)."""
    workflow_id: str | None = None
    """The workflow it belongs to: `list_jobs(workflow_id=...)` lists the workflow's jobs."""
    batch_id: str | None = None
    """The batch it belongs to (`queuekit.batch`): `list_jobs(batch_id=...)` lists its jobs and
    `Backend.batch_counts` counts them by state."""
    debounce_key: str | None = None
    """While the job has not started, an enqueue with this key rewrites it (see `NewJob`)."""
    parents: tuple[Parent, ...] | None = field(default=None, compare=False)
    """The jobs it waits for (or waited for), in the order given. Read by `get_job` and
    `get_jobs` only, like `dependents`; None elsewhere and left out of `==`."""
    dependents: tuple[str, ...] | None = field(default=None, compare=False)
    """The ids of the jobs that wait (or waited) for it, in the order they were enqueued."""
    history: tuple[AttemptRecord, ...] | None = field(default=None, compare=False)
    """Its latest `HISTORY_LIMIT` ended attempts, oldest first; a replay keeps them. Read by
    `get_job`, `cancel` and `replay`; None where it was not read (claims, `list_jobs`,
    enqueues), and left out of `==`, so a job read either way equals itself."""
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
    expires_at: datetime | None = None
    """An absolute expiry (see `Job.expires_at`), instead of `expires_in`."""
    expires_in: float | None = None
    """The expiry as seconds after the backend's `now` at enqueue, instead of `expires_at`."""
    parents: tuple[Parent, ...] = ()
    """The jobs it waits for: each stored already, or earlier in the same `enqueue_many`."""
    workflow_id: str | None = None
    unique_for: float | None = None
    """With `unique_key`: seconds from the enqueue (backend's clock) during which the job keeps
    its key after it ends in one of `unique_states`; None keeps it as long as the job is stored."""
    unique_states: tuple[JobStatus, ...] = ()
    """With `unique_key`: the finished states (completed, dead, cancelled) in which the job
    keeps holding its key; a live job always holds it. Sorted, each once."""
    on_conflict: OnConflict = OnConflict.RETURN
    """What an enqueue does when the job holding its unique key is found."""
    debounce_key: str | None = None
    """At most one unstarted (waiting or pending) job of the queue holds this key: an enqueue
    that finds it gives it the new payload and scheduled time (never later than its
    `debounce_until`) instead of storing a job."""
    debounce_max: float | None = None
    """With `debounce_key`: the holder starts at most this many seconds after it was enqueued,
    however often it is pushed back."""
    batch_id: str | None = None

    @property
    def headers_json(self) -> str | None:
        """The headers as stored: compact JSON text, or None when there are none."""
        if not self.headers:
            return None
        return compact_json(self.headers)


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of `list_jobs`, newest first; pass `next_cursor` back for the next page."""

    jobs: list[Job] = field(default_factory=list)
    next_cursor: str | None = None

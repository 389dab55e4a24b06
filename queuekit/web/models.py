"""The HTTP API's request and response models (pydantic v2), which its OpenAPI document shows.

The enqueue request is in enqueue_models.py, built from `queuekit.options.OPTIONS`. Fields are
strict: JSON `true` is not an integer and `"5"` is not a number; an integral float such as
`20.0` is an integer, as JSON Schema counts it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    create_model,
    with_config,
)
from pydantic.config import JsonDict, JsonValue
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from ..activity import DEPTH_CAP, MAX_MINUTES
from ..job import HISTORY_ERROR_CHARS, HISTORY_LIMIT, AttemptOutcome, JobStatus, OnFailure
from ..limits import MAX_LIMIT, MAX_PERIOD_SECONDS, MIN_PERIOD_SECONDS
from ..presence import MAX_LISTED_JOBS
from ..queue import CANCELLABLE, DELETABLE, REPLAYABLE, RUNNABLE
from ..search import MAX_ERROR_SEARCH, MAX_PAGE_SIZE
from ..validation import CURSOR_PATTERN, MAX_DELAY_SECONDS, MAX_UNIQUE_KEY_LENGTH, NAME_PATTERN

DEFAULT_PAGE_SIZE = 50

Name = Annotated[str, Strict(), Field(pattern=f"^{NAME_PATTERN.pattern}$")]


def integral(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
"""A date-time as JSON Schema's `date-time` format has it (RFC 3339), zone included."""


def _rfc3339(value: object) -> object:
    """A query's date-time: RFC 3339 text only (pydantic would take "0.5" as a timestamp)."""
    if not isinstance(value, str) or RFC3339.fullmatch(value) is None:
        raise ValueError("must be an RFC 3339 date-time with a time zone")
    return value


QueryInstant = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


@with_config(ConfigDict(extra="forbid"))
class ParentRef(TypedDict):
    """A job to wait for, and what to do if it ends dead or cancelled (default: cancel)."""

    id: Name
    on_failure: NotRequired[OnFailure]


_STRICT = ConfigDict(extra="forbid")


class JobQuery(BaseModel):
    """The query of `GET /v1/jobs`: filters, page size and the previous page's `next_cursor`."""

    model_config = _STRICT
    queue: Name | None = None
    status: JobStatus | None = None
    type: Name | None = None
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(
        None,
        pattern=f"^{CURSOR_PATTERN.pattern}$",
        description="The next_cursor of the previous page.",
    )
    error: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ERROR_SEARCH,
        description="Jobs whose last error holds this text (ASCII letters in any case). A "
        "search may give a page with fewer jobs and a next_cursor: only a page without one "
        "is the last.",
    )
    created_after: QueryInstant | None = Field(
        None, description="Jobs created at or after this instant (ISO 8601 with a time zone)."
    )
    created_before: QueryInstant | None = Field(
        None, description="Jobs created before this instant (ISO 8601 with a time zone)."
    )
    workflow_id: Name | None = Field(None, description="The jobs of this workflow.")
    batch_id: Name | None = Field(None, description="The jobs of this batch.")


class WorkflowQuery(BaseModel):
    """The query of `GET /v1/workflows/{workflow_id}`: page size and the previous page's
    `next_cursor`."""

    model_config = _STRICT
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(
        None,
        pattern=f"^{CURSOR_PATTERN.pattern}$",
        description="The next_cursor of the previous page.",
    )


def _job_filter(
    action: str, statuses: Sequence[JobStatus], verb: str | None = None
) -> type[BaseModel]:
    """Which jobs a bulk action takes: a field left out matches every job (of `statuses`)."""
    allowed = enum.StrEnum(f"{action}Status", {status.name: status.value for status in statuses})  # type: ignore[misc]
    return create_model(
        f"{action}Filter",
        __config__=_STRICT,
        __doc__=f"Which jobs to {verb or action.lower()}: a field left out matches every job.",
        queue=(Name | None, None),
        type=(Name | None, None),
        status=(allowed | None, None),
    )


ReplayFilter = _job_filter("Replay", REPLAYABLE)
CancelFilter = _job_filter("Cancel", CANCELLABLE)
DeleteFilter = _job_filter("Delete", DELETABLE)
RunNowFilter = _job_filter("RunNow", RUNNABLE, "run now")


class AttemptRecord(BaseModel):
    """One ended attempt of a job (see `queuekit.AttemptRecord`); times are ISO 8601 (UTC)."""

    number: int = Field(description="The job's attempt count during it.")
    worker_id: str
    started_at: datetime
    finished_at: datetime
    outcome: AttemptOutcome
    error: str | None = Field(
        description=f"The error it failed with, cut to {HISTORY_ERROR_CHARS} characters."
    )


class Job(BaseModel):
    """A job as stored; times are ISO 8601 (UTC)."""

    id: str
    queue: str
    type: str
    status: JobStatus
    payload: Any = None
    priority: int
    attempts: int
    max_attempts: int
    created_at: datetime
    scheduled_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_expires_at: datetime | None
    worker_id: str | None
    last_error: str | None
    unique_key: str | None
    limit_key: str | None = None
    """The key the queue's per-key limits count the job under."""
    result: Any = None
    headers: dict[str, str]
    expires_at: datetime | None = None
    """If the job has not started by then, it is cancelled with the error "expired"."""
    progress: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The fraction of its work the handler last reported (written with its "
        "worker's heartbeat), or null.",
    )
    progress_note: str | None = Field(None, description="The short note reported with it.")
    output: Any = Field(None, description="Partial output the handler last reported.")
    history: list[AttemptRecord] | None = Field(
        None,
        description=f"Its latest {HISTORY_LIMIT} ended attempts, oldest first (a replay keeps "
        "them): given for one job, null in lists.",
    )
    workflow_id: str | None = Field(None, description="The workflow it belongs to.")
    batch_id: str | None = Field(None, description="The batch it belongs to.")
    debounce_key: str | None = Field(
        None,
        description="While the job has not started, an enqueue with this key gives it its "
        "payload and scheduled time instead of storing a job.",
    )
    parents: list[ParentRef] | None = Field(
        None,
        description="The jobs it waits (or waited) for, in order, with what it does if one "
        "fails: given for one job, null in lists.",
    )
    dependents: list[str] | None = Field(
        None,
        description="The ids of the jobs that wait (or waited) for it: given for one job, "
        "null in lists.",
    )


class JobPage(BaseModel):
    """A page of jobs, newest first; `next_cursor` is null on the last page."""

    jobs: list[Job]
    next_cursor: str | None


class Jobs(BaseModel):
    """The jobs stored, in the order sent."""

    jobs: list[Job]


class BatchCounts(BaseModel):
    """How many of a batch's jobs are in each state, read at one moment, and in all."""

    waiting: int
    pending: int
    running: int
    failed: int = Field(description="Failed with attempts left: they run again.")
    completed: int
    dead: int
    cancelled: int
    total: int


class Count(BaseModel):
    """How many jobs a bulk action changed."""

    count: int


class QueueStats(BaseModel):
    """A queue's counts, latency, health (0 to 100) and paused flag."""

    queue: str
    paused: bool
    waiting: int = Field(description="Jobs waiting for their parents to finish.")
    pending: int
    scheduled: int
    ready: int
    running: int
    completed: int
    failed: int
    dead: int
    cancelled: int
    total: int
    oldest_ready_age: float | None
    success_rate: float | None
    health: int = Field(ge=0, le=100)


class ActivityQuery(BaseModel):
    """The query of `GET /v1/queues/{name}/activity`."""

    model_config = _STRICT
    minutes: int = Field(60, ge=1, le=MAX_MINUTES, description="How many minutes back.")


class ActivityMinute(BaseModel):
    """One minute of a queue's activity; times in seconds."""

    at: datetime = Field(description="The minute's start (UTC).")
    enqueued: int
    completed: int
    failed: int = Field(description="Attempts that failed with a retry left.")
    dead: int
    wait_p50: float | None = Field(description="Median wait from due to start.")
    wait_p95: float | None
    run_p50: float | None = Field(description="Median attempt run time.")
    run_p95: float | None
    wait: list[int] = Field(description="Starts counted per bucket of `bucket_bounds`.")
    run: list[int] = Field(description="Attempts counted per bucket of `bucket_bounds`.")
    depth: int | None = Field(
        description="The queue's ready jobs (claimable, due) when the minute's first write came,"
        f" at most {DEPTH_CAP:,}; null if not sampled: the depth is then"
        " the last sample before it."
    )


class Activity(BaseModel):
    """A queue's activity by minute, oldest first; minutes without any are left out."""

    queue: str
    bucket_bounds: list[float] = Field(
        description="Upper bounds of the time buckets; one more bucket counts longer times."
    )
    minutes: list[ActivityMinute]


class Queues(BaseModel):
    """Every queue with its stats."""

    queues: list[QueueStats]


class Error(BaseModel):
    """What went wrong, in one line."""

    error: str


LimitCount = Annotated[int, Strict(), Field(ge=1, le=MAX_LIMIT), BeforeValidator(integral)]
_LIMIT_NAMES = ("concurrency", "per_key", "rate", "key_rate")
_ONE_LIMIT: list[JsonValue] = [
    {"required": [name], "properties": {name: {"type": "integer"}}} for name in _LIMIT_NAMES
]
_SOME_LIMIT: JsonDict = {
    # The document's statement of the API's rule: a PUT sets at least one limit.
    "anyOf": [*_ONE_LIMIT, {"required": ["ordered"], "properties": {"ordered": {"const": True}}}]
}


class Limits(BaseModel):
    """A queue's limits (see `queuekit.Limits`); a limit left out or null is not applied."""

    model_config = _STRICT
    concurrency: LimitCount | None = Field(
        None, description="At most this many of the queue's jobs run at once, on every host."
    )
    per_key: LimitCount | None = Field(
        None, description="At most this many run at once per limit_key (keyless jobs: no limit)."
    )
    rate: LimitCount | None = Field(
        None, description="At most this many start per `period` in the whole queue."
    )
    key_rate: LimitCount | None = Field(
        None, description="At most this many start per `period` per limit_key."
    )
    period: Annotated[float, Strict()] = Field(
        60.0,
        ge=MIN_PERIOD_SECONDS,
        le=MAX_PERIOD_SECONDS,
        description="The rate window, in seconds.",
    )
    ordered: Annotated[bool, Strict()] = Field(
        False, description="A key's jobs run one at a time, in enqueue order."
    )


class NewLimits(Limits):
    """A queue's new limits, replacing any it has: at least one limit (DELETE removes them)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_SOME_LIMIT)


class AllLimits(BaseModel):
    """Every queue's limits, by queue name."""

    limits: dict[str, Limits]


class QueueLimits(BaseModel):
    """A queue's limits (null: none) and how much of them is in use now; times ISO 8601 (UTC)."""

    queue: str
    limits: Limits | None
    running: int = Field(description="The queue's running jobs, on every host.")
    started_in_window: int = Field(description="Jobs started in the current rate window.")
    window_ends_at: datetime | None = Field(
        description="When the current rate window ends (null without a rate)."
    )
    held_until: datetime | None = Field(description="Until when the whole queue is held.")
    held_keys: dict[str, datetime] = Field(description="The keys held now, and until when.")
    running_by_key: dict[str, int] = Field(description="Running jobs of the busiest keys.")


class Hold(BaseModel):
    """Start no job of the queue (or only of `key`) for `seconds`; a longer hold stays."""

    model_config = _STRICT
    seconds: Annotated[float, Strict()] = Field(ge=0, le=MAX_DELAY_SECONDS)
    key: Annotated[str, Strict()] | None = Field(
        None,
        min_length=1,
        max_length=MAX_UNIQUE_KEY_LENGTH,
        description="Hold only the jobs of this limit_key.",
    )


class Worker(BaseModel):
    """A running worker as it last described itself (see `queuekit.registry`); times ISO 8601."""

    id: str
    host: str
    pid: int
    version: str = Field(description="Its queuekit version.")
    state: Literal["running", "draining"] = Field(
        description="draining: asked to drain, it claims no more and exits once its jobs end."
    )
    concurrency: int = Field(description="The most jobs it runs at once.")
    queues: dict[str, int] = Field(
        description="Each queue it claims from, with the most of its jobs it runs at once."
    )
    limits: dict[str, Limits] = Field(description="The limits of its queues that have some.")
    running: int = Field(description="How many jobs it was running at its last beat.")
    job_ids: list[str] = Field(description=f"The ids of some of them (at most {MAX_LISTED_JOBS}).")
    started_at: datetime
    last_seen: datetime = Field(description="Its last beat, by the backend's clock.")
    schedules: list[Schedule] = Field(description="The schedules its scheduler fires.")


class Schedule(BaseModel):
    """A schedule the running workers fire, as they last reported it (their clock)."""

    name: str
    type: str
    queue: str
    trigger: str = Field(description='When it fires, e.g. "every 5m".')
    next_run: datetime | None
    last_slot: datetime | None = Field(description="The latest slot that has a job.")
    last_job_id: str | None = Field(description="That slot's job.")
    skipped_slots: int
    last_skip: str | None = Field(description="Why and when the latest slot was skipped.")
    last_error: str | None = Field(description="Why the last attempt to fire failed, if it did.")
    workers: list[str] = Field(description="The workers that fire it (empty within a worker).")


class Schedules(BaseModel):
    """Every schedule a running worker fires, by name (replicas' reports merged)."""

    schedules: list[Schedule]


class Workers(BaseModel):
    """The running workers, by id: those that beat within their ttl."""

    workers: list[Worker]

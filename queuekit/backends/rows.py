"""Turning stored rows into `Job`s and `QueueCounts`, the same way for every backend."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from ..job import Job, JobStatus, NewJob
from ..stats import QueueCounts
from .history import history_from_stored
from .times import optional_time, stored_time


class Row(Protocol):
    """Anything that gives a column by name: a dict, `sqlite3.Row`, `asyncpg.Record`."""

    def __getitem__(self, column: str, /) -> Any: ...


def job_from_new(job: NewJob, row: Row) -> Job:
    """The `Job` an insert of `job` stored (waiting for its parents, if it has any), as
    `job_from_row` would read it back: the request, and the columns the backend decided
    (`created_at`, `scheduled_at`, `expires_at`)."""
    return Job(
        id=job.id,
        queue=job.queue,
        type=job.type,
        payload=json.loads(job.payload_json),
        priority=job.priority,
        status=JobStatus.WAITING if job.parents else JobStatus.PENDING,
        attempts=0,
        max_attempts=job.max_attempts,
        created_at=stored_time(row["created_at"]),
        scheduled_at=stored_time(row["scheduled_at"]),
        limit_key=job.limit_key,
        headers=dict(job.headers),
        expires_at=optional_time(row["expires_at"]),
        workflow_id=job.workflow_id,
        batch_id=job.batch_id,
        unique_key=job.unique_key,
        debounce_key=job.debounce_key,
    )


def job_from_row(row: Row, *, with_history: bool = False) -> Job:
    """Build a `Job` from a stored row, whose JSON columns are text; its `history` is read
    only `with_history` (claims and lists leave it None: they need not parse it)."""
    result, headers = row["result"], row["headers"]
    return Job(
        id=row["id"],
        queue=row["queue"],
        type=row["type"],
        payload=json.loads(row["payload"]),
        priority=int(row["priority"]),
        status=JobStatus(row["status"]),
        attempts=int(row["attempts"]),
        max_attempts=int(row["max_attempts"]),
        created_at=stored_time(row["created_at"]),
        scheduled_at=stored_time(row["scheduled_at"]),
        started_at=optional_time(row["started_at"]),
        finished_at=optional_time(row["finished_at"]),
        lease_expires_at=optional_time(row["lease_expires_at"]),
        worker_id=row["worker_id"],
        last_error=row["last_error"],
        unique_key=row["unique_key"],
        limit_key=row["limit_key"],
        result=None if result is None else json.loads(result),
        headers={} if headers is None else json.loads(headers),
        lease_token=row["lease_token"],
        history=history_from_stored(row["history"]) if with_history else None,
        progress=None if row["progress"] is None else float(row["progress"]),
        progress_note=row["progress_note"],
        output=None if row["output"] is None else json.loads(row["output"]),
        expires_at=optional_time(row["expires_at"]),
        workflow_id=row["workflow_id"],
        batch_id=row["batch_id"],
        debounce_key=row["debounce_key"],
    )


def counts_from_rows(rows: Iterable[Row]) -> QueueCounts:
    """A queue's counts from one row per status of its jobs (the SQL backends' `counts`).

    Each row has `status` and `n`; `scheduled` (jobs due later), `ready_age` (seconds since
    the oldest due job became due), `recent` (finished within the success window) and
    `expired` (leases run out); a column a status cannot have may be NULL.
    """
    by_status = {row["status"]: row for row in rows}

    def count(status: JobStatus, column: str = "n") -> int:
        row = by_status.get(status)
        return int(row[column] or 0) if row is not None else 0

    ages = [
        row["ready_age"]
        for status in (JobStatus.PENDING, JobStatus.FAILED)
        if (row := by_status.get(status)) is not None and row["ready_age"] is not None
    ]
    return QueueCounts(
        waiting=count(JobStatus.WAITING),
        pending=count(JobStatus.PENDING),
        scheduled=count(JobStatus.PENDING, "scheduled") + count(JobStatus.FAILED, "scheduled"),
        running=count(JobStatus.RUNNING),
        completed=count(JobStatus.COMPLETED),
        failed=count(JobStatus.FAILED),
        dead=count(JobStatus.DEAD),
        cancelled=count(JobStatus.CANCELLED),
        oldest_ready_age=max(ages) if ages else None,
        completed_recently=count(JobStatus.COMPLETED, "recent"),
        dead_recently=count(JobStatus.DEAD, "recent"),
        expired_leases=count(JobStatus.RUNNING, "expired"),
    )

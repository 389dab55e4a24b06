"""Turning stored rows into `Job` objects, shared by the backends that store epoch seconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol

from ..job import Job, JobStatus


class Row(Protocol):
    """Anything that gives a column by name: a dict, `sqlite3.Row`, `asyncpg.Record`."""

    def __getitem__(self, column: str, /) -> Any: ...


def to_datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def job_from_row(row: Row) -> Job:
    """Build a `Job` from a row whose times are epoch seconds and whose JSON is text."""
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
        created_at=datetime.fromtimestamp(float(row["created_at"]), UTC),
        scheduled_at=datetime.fromtimestamp(float(row["scheduled_at"]), UTC),
        started_at=to_datetime(row["started_at"]),
        finished_at=to_datetime(row["finished_at"]),
        lease_expires_at=to_datetime(row["lease_expires_at"]),
        worker_id=row["worker_id"],
        last_error=row["last_error"],
        unique_key=row["unique_key"],
        result=None if result is None else json.loads(result),
        headers={} if headers is None else json.loads(headers),
    )

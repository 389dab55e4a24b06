"""Between jobs and Redis: a job as a script's arguments, and jobs and text out of replies."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ...job import Job, JobStatus, NewJob
from ..rows import job_from_new, job_from_row

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ROW_FIELDS = (
    "id",
    "queue",
    "type",
    "payload",
    "priority",
    "status",
    "attempts",
    "max_attempts",
    "created_at",
    "scheduled_at",
    "started_at",
    "finished_at",
    "lease_expires_at",
    "worker_id",
    "last_error",
    "unique_key",
    "limit_key",
    "result",
    "headers",
    "lease_token",
    "history",
    "expires_at",
    "progress",
    "progress_note",
    "output",
    "workflow_id",
    "batch_id",
    "debounce_key",
)
"""The fields of a job's hash that make a `Job` (times are epoch seconds); a hash may lack
some (a job stored before `limit_key` existed has none): they read as None."""


def micros(seconds: float) -> int:
    """Seconds as the whole microseconds the scripts count in."""
    return round(seconds * 1_000_000)


def _epoch_micros(time: datetime) -> int:
    """An aware time as whole microseconds since the epoch, as the scripts store times."""
    return (time - EPOCH) // timedelta(microseconds=1)


def enqueue_args(job: NewJob, seq: int, taken: bool, edges: str, parents: int) -> list[str]:
    """A new job's ARGV for `enqueue` and `reserve_enqueue` (check_group in lua/_enqueue.lua);
    `taken`: its id is another's; `edges`: its parents as the script reads them (enqueue.py),
    of `parents` in all (the others linked by later calls)."""
    run_at = "" if job.run_at is None else str(_epoch_micros(job.run_at))
    return [
        job.id,
        str(seq),
        job.type,
        job.payload_json,
        str(job.priority),
        str(job.max_attempts),
        str(micros(job.delay)),
        run_at,
        job.unique_key or "",
        "1" if taken else "0",
        job.headers_json or "",
        job.limit_key or "",
        "" if job.expires_at is None else str(_epoch_micros(job.expires_at)),
        "" if job.expires_in is None else str(micros(job.expires_in)),
        job.workflow_id or "",
        edges,
        ",".join(job.unique_states),
        _optional_micros(job.unique_for),
        job.on_conflict.value,
        job.debounce_key or "",
        _optional_micros(job.debounce_max),
        job.batch_id or "",
        str(parents),
    ]


def _optional_micros(seconds: float | None) -> str:
    return "" if seconds is None else str(micros(seconds))


def new_job(job: NewJob, created_at: str, outcome: str) -> Job:
    """The job an enqueue stored, from the request, its creation time and the script's outcome
    for it: '<scheduled_at>', then '|waiting' for a job stored waiting (lua/_enqueue.lua,
    link_new)."""
    scheduled_at, _, waiting = outcome.partition("|")
    decided = {
        "created_at": created_at,
        "scheduled_at": scheduled_at,
        "expires_at": _expiry(job, created_at),
    }
    stored = job_from_new(job, decided)
    if stored.status is JobStatus.WAITING and not waiting:  # its parents had all completed
        return dataclasses.replace(stored, status=JobStatus.PENDING)
    return stored


def _expiry(job: NewJob, created_at: str) -> datetime | str | None:
    """The expiry the script stored: the request's, or `expires_in` after `created_at` (as
    "seconds.micros", counted in whole microseconds as the script counts)."""
    if job.expires_in is None:
        return job.expires_at
    seconds, _, fraction = created_at.partition(".")
    us = int(seconds) * 1_000_000 + int(fraction or "0") + micros(job.expires_in)
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def job_from_hash(fields: Sequence[str] | Mapping[str, str], *, with_history: bool = False) -> Job:
    """A job from its hash, as HGETALL returns it (a mapping, or a flat list from Lua); its
    history is read only `with_history` (see `job_from_row`)."""
    # Every row field present (None when the hash lacks it); extra fields (seq) do no harm.
    row: dict[str, Any] = dict.fromkeys(ROW_FIELDS)
    if isinstance(fields, Mapping):
        row.update(fields)
    else:
        pairs = iter(fields)
        row.update(zip(pairs, pairs, strict=True))
    return job_from_row(row, with_history=with_history)


def text(value: Any) -> Any:
    """Replies as text whatever the client's `decode_responses`."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list | tuple | set):
        return [text(item) for item in value]
    if isinstance(value, dict):
        return {text(key): text(item) for key, item in value.items()}
    return value


def find_values(reply: Any, name: str) -> Iterator[Any]:
    """The values of `name` in a CONFIG GET reply, per node on a Cluster."""
    if isinstance(reply, dict):
        for key, value in reply.items():
            if key == name:
                yield value
            else:
                yield from find_values(value, name)

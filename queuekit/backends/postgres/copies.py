"""Storing a large call of plain jobs with COPY: the rows stream to the server in binary, with
the time their transaction began as the enqueue's `now`; one statement then adds their ready
keys and wake-ups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from ...job import Job, NewJob
from ..rows import job_from_new
from .connections import Connection
from .inserts import Links, has_keys, refusals

COPY_AT_LEAST = 500
"""The smallest call stored by COPY. From here on it was faster than `insert` in every
measure (5 to 12 %, calls of 500 to 5,000 jobs); below, its transaction's four extra round
trips cost about what it saves on the rows."""

COLUMNS = (
    "id",
    "queue",
    "type",
    "payload",
    "priority",
    "status",
    "max_attempts",
    "created_at",
    "scheduled_at",
    "headers",
    "limit_key",
    "expires_at",
    "workflow_id",
    "batch_id",
)
"""The columns a plain job's row sets; the rest keep their defaults, as `insert` leaves them."""
SCHEDULED_AT, EXPIRES_AT = COLUMNS.index("scheduled_at"), COLUMNS.index("expires_at")


def copyable(jobs: Sequence[NewJob], links: Links) -> bool:
    """Whether a call goes in by COPY: large, with no parents (`links`) and no keys, whose rows
    `insert` decides against the jobs stored before."""
    return len(jobs) >= COPY_AT_LEAST and links.counts is None and not any(map(has_keys, jobs))


async def copy_in(
    conn: Connection,
    sql: Mapping[str, str],
    where: tuple[str, str],
    channel: str,
    jobs: Sequence[NewJob],
    notify: Sequence[str],
) -> list[Job]:
    """Store `jobs` in the table `where` (schema, table) by COPY, in one transaction, and send a
    wake-up on `channel` for the queues in `notify`."""
    schema, table = where
    async with conn.transaction():
        # now() is the transaction's start, the time `insert` would store: read before the rows.
        now: datetime = await conn.fetchval(sql["transaction_time"])
        rows = [_row(job, now) for job in jobs]
        with refusals(jobs):
            await conn.copy_records_to_table(
                table, schema_name=schema, columns=COLUMNS, records=rows
            )
        keys = {(job.queue, job.limit_key) for job in jobs}
        queues, limit_keys = zip(*keys, strict=True)
        await conn.execute(sql["copied"], queues, limit_keys, channel, notify)
    return [
        job_from_new(
            job,
            {"created_at": now, "scheduled_at": row[SCHEDULED_AT], "expires_at": row[EXPIRES_AT]},
        )
        for job, row in zip(jobs, rows, strict=True)
    ]


def _row(job: NewJob, now: datetime) -> tuple[object, ...]:
    """`job`'s values for `COLUMNS`, its times decided as `insert` decides them at `now`."""
    return (
        job.id,
        job.queue,
        job.type,
        job.payload_json,
        job.priority,
        "pending",
        job.max_attempts,
        now,
        job.run_at or now + timedelta(seconds=job.delay),
        job.headers_json,
        job.limit_key,
        job.expires_at
        or (None if job.expires_in is None else now + timedelta(seconds=job.expires_in)),
        job.workflow_id,
        job.batch_id,
    )

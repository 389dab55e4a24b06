"""Storing new jobs: one statement per batch; a taken unique key answers with its live holder."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import asyncpg

from ...errors import (
    BackendUnavailableError,
    InvalidOptionError,
    InvalidPayloadError,
    JobExistsError,
)
from ...job import Job, NewJob
from ..rows import job_from_row

UNIQUE_RACES = 5
"""How often a batch is inserted again while the holders of its unique keys keep changing."""


class Fetcher(Protocol):
    """What storing needs of a connection: asyncpg's `fetch` and `fetchrow`."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...


@contextlib.contextmanager
def _refusals(jobs: Sequence[NewJob]) -> Iterator[None]:
    """Turn what PostgreSQL refuses to store of `jobs` into the typed errors of the API.

    Errors are told apart by SQLSTATE, which asyncpg's and psycopg's (a caller's connection,
    see psycopg_caller.py) both carry.
    """
    try:
        yield
    except Exception as exc:
        state: str = getattr(exc, "sqlstate", None) or ""
        if state == asyncpg.UniqueViolationError.sqlstate:
            # The id is the one unique column a conflict is not resolved on. The detail names
            # it as "(id)=(<id>)" in every server language; ids cannot hold parentheses.
            detail = getattr(exc, "detail", None) or getattr(
                getattr(exc, "diag", None), "message_detail", None
            )
            taken = re.search(r"\(id\)=\((.*?)\)", detail or "")
            raise JobExistsError(taken.group(1) if taken else jobs[0].id) from None
        if state.startswith(asyncpg.DataError.sqlstate[:2]):  # class 22, data exception
            raise InvalidPayloadError(f"PostgreSQL refused a payload: {exc}") from None
        if state == asyncpg.CheckViolationError.sqlstate:
            raise InvalidOptionError(f"PostgreSQL refused a job: {exc}") from None
        raise


async def insert(
    conn: Fetcher,
    sql: Mapping[str, str],
    channel: str,
    jobs: Sequence[NewJob],
    notify: Sequence[str],
) -> list[Job]:
    """Store `jobs` on `conn`, sending a wake-up on `channel` for the queues in `notify`.

    A job whose unique key a live job holds gets that job back; when the holder committed
    after the insert's snapshot it is looked up, and when it ended meanwhile the job is
    inserted again.
    """
    if len(jobs) == 1 and jobs[0].unique_key is None:
        return [await _insert_one(conn, sql, channel, jobs[0], notify)]
    stored: list[Job | None] = [None] * len(jobs)
    todo = list(range(len(jobs)))
    for _ in range(UNIQUE_RACES):
        batch = [jobs[i] for i in todo]
        with _refusals(batch):
            rows = await conn.fetch(
                sql["insert"],
                [job.id for job in batch],
                [job.queue for job in batch],
                [job.type for job in batch],
                [job.payload_json for job in batch],
                [job.priority for job in batch],
                [job.max_attempts for job in batch],
                [job.delay for job in batch],
                [job.run_at for job in batch],
                [job.unique_key for job in batch],
                [job.headers_json for job in batch],
                [job.limit_key for job in batch],
                channel,
                list(notify),
                [job.expires_at for job in batch],
                [job.expires_in for job in batch],
            )
        inserted = {row["id"]: row for row in rows if row["inserted"]}
        holders = {(row["queue"], row["unique_key"]): row for row in rows if not row["inserted"]}
        holders.update(
            {
                (row["queue"], row["unique_key"]): row
                for row in inserted.values()
                if row["unique_key"] is not None
            }
        )
        missing = [i for i in todo if not _answer(jobs[i], i, inserted, holders, stored)]
        if not missing:
            break
        # Their key's holder committed after the insert's snapshot: look again.
        lookup = [jobs[i] for i in missing]
        for row in await conn.fetch(
            sql["live_unique"],
            [job.queue for job in lookup],
            [job.unique_key for job in lookup],
        ):
            holders[(row["queue"], row["unique_key"])] = row
        # Whatever is still unanswered lost its holder meanwhile: insert it again.
        todo = [i for i in missing if not _answer(jobs[i], i, {}, holders, stored)]
        if not todo:
            break
    if any(job is None for job in stored):
        raise BackendUnavailableError("enqueue kept racing with changes to its unique keys")
    return [job for job in stored if job is not None]


async def _insert_one(
    conn: Fetcher, sql: Mapping[str, str], channel: str, job: NewJob, notify: Sequence[str]
) -> Job:
    """The common enqueue (one job, no unique key) in a statement that is cheaper to run."""
    with _refusals([job]):
        row = await conn.fetchrow(
            sql["insert_one"],
            job.id,
            job.queue,
            job.type,
            job.payload_json,
            job.priority,
            job.max_attempts,
            job.delay,
            job.run_at,
            job.headers_json,
            channel,
            bool(notify),
            job.limit_key,
            job.expires_at,
            job.expires_in,
        )
    assert row is not None
    return job_from_row(row)


def _answer(
    job: NewJob,
    index: int,
    inserted: Mapping[str, asyncpg.Record],
    holders: Mapping[tuple[str, str | None], asyncpg.Record],
    stored: list[Job | None],
) -> bool:
    """Fill in `stored[index]` with the row inserted for `job` or the holder of its key."""
    row = inserted.get(job.id)
    if row is None and job.unique_key is not None:
        row = holders.get((job.queue, job.unique_key))
    if row is None:
        return False
    stored[index] = job_from_row(row)
    return True

"""Storing new jobs: one statement per call; a held unique or debounce key answers with its
holder; jobs with parents are stored with their edges, under locks on their stored parents."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from ...errors import (
    InvalidOptionError,
    InvalidPayloadError,
    JobExistsError,
    UnknownParentError,
)
from ...job import TERMINAL_STATUSES, Job, NewJob, OnConflict
from ..rows import job_from_new, job_from_row

SAVEPOINT = "queuekit_enqueue"
"""Where an enqueue with parents on a caller's transaction goes back to when it is refused."""


class Fetcher(Protocol):
    """What storing needs of a connection: asyncpg's `fetch` and `fetchrow`."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...


@contextlib.contextmanager
def refusals(jobs: Sequence[NewJob]) -> Iterator[None]:
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


def has_keys(job: NewJob) -> bool:
    """Whether an enqueue of `job` may be answered by the holder of its key."""
    return job.unique_key is not None or job.debounce_key is not None


async def insert(
    conn: Fetcher,
    sql: Mapping[str, str],
    channel: str,
    jobs: Sequence[NewJob],
    notify: Sequence[str],
    links: Links,
    *,
    savepoint: bool = False,
) -> list[Job]:
    """Store `jobs` on `conn`, sending a wake-up on `channel` for the queues in `notify`.

    A job whose unique or debounce key is held gets the holder back, rewritten as its options
    say: the jobs of a call go in as that many enqueues, one by one (`insert_keyed`).

    Jobs with parents (`links`, from `links_of(jobs)`) may take several statements
    (`Links.one_statement`), which must run in one transaction: the caller's (then
    `savepoint`, so that a refused call leaves nothing of itself in it) or one the backend
    opened for them.
    """
    if len(jobs) == 1 and not jobs[0].parents and not has_keys(jobs[0]):
        return [await _insert_one(conn, sql, channel, jobs[0], notify)]
    if links.one_statement:
        return await _insert_rows(conn, sql, channel, jobs, notify, links)
    if not savepoint:
        return await _insert_with_parents(conn, sql, channel, jobs, notify, links)
    async with _savepoint(conn):
        return await _insert_with_parents(conn, sql, channel, jobs, notify, links)


@contextlib.asynccontextmanager
async def _savepoint(conn: Fetcher) -> AsyncIterator[None]:
    """Undo what the block wrote on `conn` if it raises, and go on with the transaction: a
    refused enqueue leaves the caller's transaction as it found it."""
    await conn.fetch(f"SAVEPOINT {SAVEPOINT}")
    try:
        yield
    except Exception:
        await conn.fetch(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        raise
    await conn.fetch(f"RELEASE SAVEPOINT {SAVEPOINT}")


@dataclass
class Links:
    """The parents of a call's jobs, as the `insert` statement takes them ($15..$20, $23..$26)."""

    counts: list[int] | None = None
    """Each job's number of parents."""
    waited_for: list[bool] | None = None
    """Whether a later job of the call waits for it."""
    edges: tuple[str, str, str, str] | None = None
    """The edges kept as rows (migration 19: to parents stored before the call, or every edge
    of a call with keys): child ids, positions, parent ids, on_failure, each list joined by
    spaces, which no id holds (`check_job_id`). One text goes to the server in a fraction of
    the time of an array of as many elements, which the driver checks one by one."""
    parent_ids: list[str] | None = None
    """Per job, its parents' ids joined by spaces."""
    parent_policies: list[str] | None = None
    """Per job, its edges' on_failure joined by spaces."""
    dependents: list[str] | None = None
    """Per job, its dependents in the call ("<id>,<position>,<on_failure>", joined by spaces):
    kept on its row. None for a call with keys."""
    outside: list[str] = field(default_factory=list)
    """The parents that are not jobs of the call: stored ones, or unknown."""
    one_statement: bool = True
    """Whether the call is stored by one statement (see `insert`): no job waits for one stored
    before, and no job of a call with parents may be answered by the holder of its key. A
    whole workflow enqueued at once, without keys, is one statement."""

    def per_job(self) -> tuple[str | None, str | None, str | None, str | None]:
        """$23..$26 of `insert`: the per-job lists joined by '/' (no id holds one), and the id
        the call's jobs share when some wait for others (migration 19)."""
        if self.parent_ids is None or self.parent_policies is None:
            return None, None, None, None
        dependents = self.dependents or ()
        return (
            "/".join(self.parent_ids),
            "/".join(self.parent_policies),
            "/".join(dependents),
            uuid.uuid4().hex if any(dependents) else None,
        )


def links_of(jobs: Sequence[NewJob]) -> Links:
    """Where each parent of `jobs` is: a job earlier in the call, or outside it."""
    if not any(job.parents for job in jobs):
        return Links()
    # A job answered by the holder of its key is not stored: no parent may keep it on its row.
    keyed = any(has_keys(job) for job in jobs)
    in_call: dict[str, list[str]] = {}  # each job of the call so far -> its dependents in it
    outside: dict[str, None] = {}
    row_children: list[str] = []
    row_positions: list[str] = []
    row_parents: list[str] = []
    row_policies: list[str] = []
    parents_of_job: list[str] = []
    policies_of_job: list[str] = []
    for job in jobs:
        ids = [parent.job_id for parent in job.parents]
        policies = [parent.on_failure for parent in job.parents]
        parents_of_job.append(" ".join(ids))
        policies_of_job.append(" ".join(policies))
        entry = job.id + ","
        for position, parent_id in enumerate(ids):
            dependents = in_call.get(parent_id)
            if dependents is None:
                outside[parent_id] = None
            else:
                # (concatenated: an f-string formats the StrEnum in Python, 5 times slower)
                dependents.append(entry + str(position) + "," + policies[position])
                if not keyed:
                    continue
            row_children.append(job.id)
            row_positions.append(str(position))
            row_parents.append(parent_id)
            row_policies.append(policies[position])
        in_call[job.id] = []
    return Links(
        counts=[len(job.parents) for job in jobs],
        waited_for=[bool(in_call[job.id]) for job in jobs],
        edges=(
            (
                " ".join(row_children),
                " ".join(row_positions),
                " ".join(row_parents),
                " ".join(row_policies),
            )
            if row_children
            else None
        ),
        parent_ids=parents_of_job,
        parent_policies=policies_of_job,
        dependents=None if keyed else [" ".join(in_call[job.id]) for job in jobs],
        outside=list(outside),
        one_statement=not outside and not keyed,
    )


async def _insert_with_parents(
    conn: Fetcher,
    sql: Mapping[str, str],
    channel: str,
    jobs: Sequence[NewJob],
    notify: Sequence[str],
    links: Links,
) -> list[Job]:
    """Lock the stored parents, store the jobs (those with parents `waiting`) and their edges,
    then decide the jobs whose parents had ended already, as their end would have."""
    statuses: dict[str, str] = {}
    if links.outside:
        rows = await conn.fetch(sql["lock_parents"], links.outside)
        statuses = {row["id"]: row["status"] for row in rows}
        for parent_id in links.outside:
            if parent_id not in statuses:
                raise UnknownParentError(parent_id)
    stored = await _insert_rows(conn, sql, channel, jobs, notify, links)
    for job, got, waited_for in zip(jobs, stored, links.waited_for or (), strict=True):
        # Answered by the holder of its key: the job named does not exist.
        if waited_for and got.id != job.id:
            raise UnknownParentError(job.id)
    if links.dependents is None:  # `insert_keyed`, which leaves the parents to `set_parents`
        await _set_parents(conn, sql, jobs, stored, links)
    ended = {job_id: status for job_id, status in statuses.items() if status in TERMINAL_STATUSES}
    if not ended:
        return stored
    await conn.fetch(sql["parents_end"], list(ended), list(ended.values()))
    # Read back what that decided for the jobs stored now.
    decided = [got.id for job, got in zip(jobs, stored, strict=True) if job.parents]
    reread = {row["id"]: row for row in await conn.fetch(sql["get"], decided)}
    return [job_from_row(reread[got.id]) if got.id in reread else got for got in stored]


async def _set_parents(
    conn: Fetcher, sql: Mapping[str, str], jobs: Sequence[NewJob], stored: list[Job], links: Links
) -> None:
    """Write on their rows the parents of the jobs with some that `insert_keyed` stored."""
    assert links.parent_ids is not None and links.parent_policies is not None
    linked = [
        (job.id, ids, policies)
        for job, got, ids, policies in zip(
            jobs, stored, links.parent_ids, links.parent_policies, strict=True
        )
        if job.parents and got.id == job.id
    ]
    if linked:
        await conn.fetch(sql["set_parents"], *map(list, zip(*linked, strict=True)))


async def _insert_rows(
    conn: Fetcher,
    sql: Mapping[str, str],
    channel: str,
    jobs: Sequence[NewJob],
    notify: Sequence[str],
    links: Links,
) -> list[Job]:
    """The `insert` statement, or `insert_keyed` for a call in which a job has a key: one job
    per request, in order."""
    args: list[object] = [
        [job.id for job in jobs],
        [job.queue for job in jobs],
        [job.type for job in jobs],
        [job.payload_json for job in jobs],
        [job.priority for job in jobs],
        [job.max_attempts for job in jobs],
        [job.delay for job in jobs],
        [job.run_at for job in jobs],
        [job.headers_json for job in jobs],
        [job.limit_key for job in jobs],
        [job.expires_at for job in jobs],
        [job.expires_in for job in jobs],
        [job.workflow_id for job in jobs],
        [job.batch_id for job in jobs],
        links.counts,
        links.waited_for,
        *(links.edges or (None, None, None, None)),
        channel,
        list(notify),
    ]
    if not any(has_keys(job) for job in jobs):
        with refusals(jobs):
            rows = await conn.fetch(sql["insert"], *args, *links.per_job())
        decided = {row["id"]: row for row in rows}
        return [job_from_new(job, decided[job.id]) for job in jobs]
    with refusals(jobs):
        rows = await conn.fetch(
            sql["insert_keyed"],
            *args,
            [job.unique_key for job in jobs],
            [",".join(job.unique_states) or None for job in jobs],
            [job.unique_for for job in jobs],
            [job.on_conflict == OnConflict.REPLACE for job in jobs],
            [job.debounce_key for job in jobs],
            [job.debounce_max for job in jobs],
        )
    return [job_from_row(row) for row in rows]


async def _insert_one(
    conn: Fetcher, sql: Mapping[str, str], channel: str, job: NewJob, notify: Sequence[str]
) -> Job:
    """The common enqueue (one job, no key, no parent) in a statement that is cheaper to run."""
    with refusals([job]):
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
            job.workflow_id,
            job.batch_id,
        )
    assert row is not None
    return job_from_new(job, row)

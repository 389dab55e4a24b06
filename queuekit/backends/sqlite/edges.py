"""What dependencies add to a job's rows on SQLite: an enqueue's inserts with their parents'
edges, and reads with parents and dependents (`Backend`'s rules)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import aiosqlite

from ...errors import JobExistsError, UnknownParentError
from ...job import Job, NewJob, OnFailure, Parent
from ..rows import job_from_row
from .callers import rows_by_name
from .expiry import expiry_params
from .keys import holder, key_params
from .queries import SQL


async def insert_jobs(db: aiosqlite.Connection, jobs: Sequence[NewJob]) -> list[Job]:
    """Store `jobs` in order, inside the transaction `db` is in, each as its own enqueue
    would be (a later one meets the key an earlier one took); for a key held, its holder. A
    job with parents is stored waiting, pending or cancelled as they decide (the
    `insert_after` statement); each parent must be stored already or earlier in the call
    (`UnknownParentError`). Besides one insert per job (and the statements of `keys.holder`
    for a keyed job that meets a holder), a call with parents costs two statements: one
    marking the parents stored before it, one storing every edge of the call."""
    named = {parent.job_id for new in jobs for parent in new.parents}
    stored_before: set[str] = set()
    if named:
        flagged = await rows_by_name(db, SQL["flag_parents"], {"ids": json.dumps(list(named))})
        stored_before = {row["id"] for row in flagged}
    # Earlier in the call counts only if stored: a request its key's holder answered is not.
    stored_here: set[str] = set()
    edges: list[tuple[str, int, str, str]] = []
    answers: list[Job] = []
    for new in jobs:
        for parent in new.parents:
            if parent.job_id not in stored_before and parent.job_id not in stored_here:
                raise UnknownParentError(parent.job_id)
        job, inserted = await _insert_job(db, new, has_dependents=new.id in named)
        if inserted:
            stored_here.add(new.id)
            edges.extend(
                (new.id, position, parent.job_id, str(parent.on_failure))
                for position, parent in enumerate(new.parents)
            )
        answers.append(job)
    if edges:
        await db.execute(SQL["insert_edges"], {"edges": json.dumps(edges)})
    return answers


async def _insert_job(
    db: aiosqlite.Connection, new: NewJob, *, has_dependents: bool
) -> tuple[Job, bool]:
    """Store `new` (its parents checked already); the job and whether it was stored, or the
    holder of its unique or debounce key (rewritten as `keys.holder` says) and False."""
    parents = _parents_json(new.parents)
    params = {
        "id": new.id,
        "queue": new.queue,
        "type": new.type,
        "payload": new.payload_json,
        "priority": new.priority,
        "max_attempts": new.max_attempts,
        "run_at": None if new.run_at is None else new.run_at.timestamp(),
        "delay": new.delay,
        "headers": new.headers_json,
        "limit_key": new.limit_key,
        "workflow_id": new.workflow_id,
        "batch_id": new.batch_id,
        "parents": parents,
        "has_dependents": int(has_dependents),
        **expiry_params(new),
        **key_params(new),
    }
    keyed = new.unique_key is not None or new.debounce_key is not None
    # Held first: a job its parents cancel at once is stored cancelled, which may hold no key,
    # so the insert would not meet the holder.
    if keyed and parents is not None and (held := await holder(db, new, params)):
        return held, False
    insert = SQL["insert" if parents is None else "insert_after"]
    rows = await rows_by_name(db, insert, params)
    if not rows and keyed:
        if held := await holder(db, new, params):
            return held, False
        # No holder: the one the insert met was let go (its hold was over), or the id is taken.
        rows = await rows_by_name(db, insert, params)
    if rows:
        return job_from_row(rows[0]), True
    raise JobExistsError(new.id)


def _parents_json(parents: Sequence[Parent]) -> str | None:
    """The insert's :parents, a JSON array of [id, on_failure]; None for no parents."""
    if not parents:
        return None
    return json.dumps([[parent.job_id, str(parent.on_failure)] for parent in parents])


async def jobs_with_edges(db: aiosqlite.Connection, job_ids: Sequence[str]) -> list[Job]:
    """The jobs of `job_ids` that exist, in that order, with their history, parents and
    dependents: one read of the jobs and one of the edges (in a snapshot the caller opened)."""
    ids = json.dumps(list(job_ids))
    rows = {row["id"]: row for row in await db.execute_fetchall(SQL["get_many"], {"ids": ids})}
    parents: dict[str, list[Parent]] = {job_id: [] for job_id in rows}
    dependents: dict[str, list[str]] = {job_id: [] for job_id in rows}
    for edge in await db.execute_fetchall(SQL["edges_of"], {"ids": ids}):
        if edge["kind"] == "parent":
            parents[edge["job_id"]].append(Parent(edge["other"], OnFailure(edge["on_failure"])))
        else:
            dependents[edge["job_id"]].append(edge["other"])
    return [
        dataclasses.replace(
            job_from_row(rows[job_id], with_history=True),
            parents=tuple(parents[job_id]),
            dependents=tuple(dependents[job_id]),
        )
        for job_id in job_ids
        if job_id in rows
    ]

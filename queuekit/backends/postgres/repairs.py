"""`Repairs`: the inspecting and repairing half of `PostgresBackend`, one statement a call."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence

import asyncpg

from ...backend import Batch, JobFilter
from ...batches import BatchCounts
from ...errors import BackendUnavailableError, JobRunningError
from ...job import Job, JobPage, JobStatus, OnFailure, Parent
from ...search import NO_SEARCH, JobSearch
from ...stats import SUCCESS_WINDOW_SECONDS, QueueCounts
from ..rows import counts_from_rows, job_from_row
from .table import PostgresTable

MAX_BIGINT = 2**63 - 1
REPLAY_RACES = 10
"""How often a replay batch runs again after a concurrent enqueue took one of its unique keys."""


class Repairs(PostgresTable):
    """Reading jobs and queues, and changing jobs no worker holds: cancel, replay, delete,
    their bulk batches, and pruning."""

    _prune_batch_size: int

    async def get_job(self, job_id: str) -> Job | None:
        # Backend's, which this part (not a Backend) needs for cancel, replay and run_now.
        jobs = await self.get_jobs([job_id])
        return jobs[0] if jobs else None

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        rows = {row["id"]: row for row in await self._fetch("get", list(job_ids))}
        return [_with_edges(rows[job_id]) for job_id in job_ids if job_id in rows]

    async def list_jobs(
        self,
        *,
        queue: str | None = None,
        status: JobStatus | None = None,
        type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        search: JobSearch = NO_SEARCH,
    ) -> JobPage:
        # Only the conditions in use, so each variant gets a plan that fits the list index.
        conditions: list[str] = []
        args: list[object] = []
        for column, value in (
            ("queue = {arg}", queue),
            ("status = {arg}", None if status is None else str(status)),
            ("type = {arg}", type),
            ("seq < {arg}", None if cursor is None else min(int(cursor), MAX_BIGINT)),
            (self._sql["search_error"], search.error),
            (self._sql["search_created_after"], search.created_after),
            (self._sql["search_created_before"], search.created_before),
            (self._sql["search_workflow"], search.workflow_id),
            (self._sql["search_batch"], search.batch_id),
        ):
            if value is not None:
                args.append(value)
                conditions.append(column.replace("{arg}", f"${len(args)}"))
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        args.append(limit + 1)
        sql = f"SELECT * FROM {self.qualified_table} {where}ORDER BY seq DESC LIMIT ${len(args)}"
        pool = self._require_pool()
        with self._guard():
            rows = await pool.fetch(sql, *args)
        page = rows[:limit]
        next_cursor = str(page[-1]["seq"]) if len(rows) > limit else None
        return JobPage([job_from_row(row) for row in page], next_cursor)

    async def batch_counts(self, batch_id: str) -> BatchCounts:
        rows = await self._fetch("batch_counts", batch_id)
        return BatchCounts.of({JobStatus(row["status"]): row["n"] for row in rows})

    async def list_queues(self) -> list[str]:
        return [row["queue"] for row in await self._fetch("list_queues")]

    async def pause(self, queue: str) -> None:
        await self._execute("pause", queue)

    async def resume(self, queue: str) -> None:
        rows = await self._fetch("resume", queue, self.channel)
        if rows and rows[0]["notified"]:
            self._work_waiters.wake([queue])

    async def paused_queues(self) -> set[str]:
        return {row["queue"] for row in await self._fetch("paused_queues")}

    async def stats(self, queue: str) -> QueueCounts:
        await self.fold_counts(age=False)
        return counts_from_rows(await self._fetch("counts", queue, SUCCESS_WINDOW_SECONDS))

    async def fold_counts(self, *, age: bool) -> None:
        """Fold the count changes appended since the last fold into the counts, so that `stats`
        reads a few rows per queue; with `age`, also the minutes no longer needed apart (a
        read of every queue's counts: each worker's rescue does it now and then)."""
        await self._execute("fold_counts", SUCCESS_WINDOW_SECONDS, age)

    async def cancel(self, job_id: str) -> Job | None:
        changed = _changed(await self._fetch("cancel_one", job_id, self.channel))
        if not changed:
            return await self.get_job(job_id)
        self._outcome_waiters.wake([job_id])
        job = job_from_row(changed[0], with_history=True)
        self._wake_freed([job.queue])
        return job

    async def replay(self, job_id: str) -> Job | None:
        try:
            changed = _changed(await self._fetch("replay_one", job_id, self.channel))
        except asyncpg.UniqueViolationError:
            changed = []  # a live job took the unique key at the same moment: leave this one
        if not changed:
            return await self.get_job(job_id)
        job = job_from_row(changed[0], with_history=True)
        self._work_waiters.wake([job.queue])
        return job

    async def run_now(self, job_id: str) -> Job | None:
        changed = _changed(await self._fetch("run_now_one", job_id, self.channel))
        if not changed:
            return await self.get_job(job_id)
        job = job_from_row(changed[0], with_history=True)
        self._work_waiters.wake([job.queue])
        return job

    async def delete_job(self, job_id: str) -> bool:
        rows = await self._fetch("delete_one", job_id)
        if _changed(rows):
            return True
        if not rows[0]["chosen"]:
            return False
        # Chosen but left: running when the delete came to it, or deleted meanwhile by another
        # call, which this statement cannot see. Look again.
        job = await self.get_job(job_id)
        if job is None:
            return False
        if job.status == JobStatus.RUNNING:
            raise JobRunningError(job_id)
        return await self.delete_job(job_id)  # it stopped running since

    async def replay_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        for _ in range(REPLAY_RACES):
            try:
                changed, batch = await self._batch("replay", where, after, limit, self.channel)
            except asyncpg.UniqueViolationError:
                continue  # a live job took a unique key meanwhile: the next run sees it
            self._work_waiters.wake({row["queue"] for row in changed})
            return batch
        raise BackendUnavailableError("replay kept racing with enqueues of its unique keys")

    async def cancel_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        changed, batch = await self._batch("cancel", where, after, limit, self.channel)
        self._outcome_waiters.wake([row["id"] for row in changed])
        self._wake_freed({row["queue"] for row in changed})
        return batch

    async def delete_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return (await self._batch("delete", where, after, limit))[1]

    async def run_now_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        changed, batch = await self._batch("run_now", where, after, limit, self.channel)
        self._work_waiters.wake({row["queue"] for row in changed})
        return batch

    async def _batch(
        self, action: str, where: JobFilter, after: int, limit: int, *extra: object
    ) -> tuple[list[asyncpg.Record], Batch]:
        """`action` on the batch `chosen_batch` picks, in one statement, then on each job
        another statement held meanwhile, in one statement each (see queries.sql)."""
        status = str(where.status)
        rows = await self._fetch(
            f"{action}_batch", status, where.queue, where.type, after, limit, *extra
        )
        changed = _changed(rows)
        for seq in rows[0]["passed_over"]:
            # A replay that meets a live job taking the unique key leaves the job, as `replay`.
            with contextlib.suppress(asyncpg.UniqueViolationError):
                changed += _changed(await self._fetch(f"{action}_passed", seq, status, *extra))
        # Every other chosen row that was not changed had changed meanwhile: it is left alone.
        more = rows[0]["chosen"] == limit
        return changed, Batch(len(changed), rows[0]["last_chosen"] if more else None)

    async def prune(self, older_than: float, statuses: Sequence[JobStatus]) -> int:
        """Delete at most `prune_batch_size` rows per statement, so none runs long.

        `prune_keys` returns one batch's keys, oldest first; `prune` deletes those keys within
        the range of finish times they span (see queries.sql).
        """
        cutoff = (await self._fetch("prune_cutoff", older_than))[0][0]
        total = 0
        for status in dict.fromkeys(str(status) for status in statuses):
            while True:
                rows = await self._fetch("prune_keys", status, cutoff, self._prune_batch_size)
                if not rows:
                    break
                keys = [row["seq"] for row in rows]
                low, high = rows[0]["finished_at"], rows[-1]["finished_at"]
                total += _rowcount(await self._execute("prune", status, cutoff, keys, low, high))
                if len(rows) < self._prune_batch_size:
                    break
        return total


def _with_edges(row: asyncpg.Record) -> Job:
    """The job of a `get` row, with its history, parents and dependents."""
    ids, policies = row["parent_ids"], row["parent_policies"]  # each joined by spaces
    parents = zip(
        ids.split(" ") if ids else (), policies.split(" ") if policies else (), strict=True
    )
    return dataclasses.replace(
        job_from_row(row, with_history=True),
        parents=tuple(Parent(job_id, OnFailure(policy)) for job_id, policy in parents),
        dependents=tuple(row["dependent_ids"] or ()),
    )


def _changed(rows: Sequence[asyncpg.Record]) -> list[asyncpg.Record]:
    """The rows a cancel, replay or delete changed (see queries.sql)."""
    return [row for row in rows if row["id"] is not None]


def _rowcount(status: str) -> int:
    """The row count of a command tag such as 'DELETE 3'."""
    return int(status.rsplit(" ", 1)[-1])

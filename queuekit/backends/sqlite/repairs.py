"""`Repairs`: the inspecting and repairing half of `SQLiteBackend`, one statement a call."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ...backend import Batch, JobFilter
from ...batches import BatchCounts
from ...errors import JobRunningError
from ...job import Job, JobPage, JobStatus
from ...search import NO_SEARCH, JobSearch
from ...stats import SUCCESS_WINDOW_SECONDS, QueueCounts
from ..rows import counts_from_rows, job_from_row
from .decided import take_decided
from .edges import jobs_with_edges
from .queries import SQL, equal_to
from .table import SQLiteTable

DELETE_BATCH = 1000
"""Rows per statement when pruning, so no delete holds the write lock for long."""
ONE_JOB = " AND j.id = :id"
"""Cancel, replay or delete one job (see queries.sql)."""
MAX_SEQ = 2**63 - 1


class Repairs(SQLiteTable):
    """Reading jobs and queues, and changing jobs no worker holds: cancel, replay, delete,
    their bulk batches, and pruning. `SQLiteBackend` gives it the connection's calls."""

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        async with self._snapshot() as db:
            return await jobs_with_edges(db, job_ids)

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
        params = {
            "queue": queue,
            "status": None if status is None else str(status),
            "type": type,
            "before": MAX_SEQ if cursor is None else int(cursor),
            "limit": limit + 1,
            "error": search.error,
            "created_after": _epoch(search.created_after),
            "created_before": _epoch(search.created_before),
            "workflow_id": search.workflow_id,
            "batch_id": search.batch_id,
        }
        searching = "".join(
            f" AND {SQL['search_' + term]}"
            for term in ("error", "created_after", "created_before", "workflow_id", "batch_id")
            if params[term] is not None
        )
        conditions = equal_to(params, "queue", "status", "type") + searching
        rows = await self._read("list", params, conditions)
        page = rows[:limit]
        next_cursor = str(page[-1]["seq"]) if len(rows) > limit else None
        return JobPage([job_from_row(row) for row in page], next_cursor)

    async def batch_counts(self, batch_id: str) -> BatchCounts:
        rows = await self._read("batch_counts", {"batch_id": batch_id})
        return BatchCounts.of({JobStatus(row["status"]): row["n"] for row in rows})

    async def list_queues(self) -> list[str]:
        return [row[0] for row in await self._read("list_queues", {})]

    async def stats(self, queue: str) -> QueueCounts:
        params = {"queue": queue, "window": SUCCESS_WINDOW_SECONDS}
        return counts_from_rows(await self._read("counts", params))

    async def fold_counts(self) -> None:
        """Fold the counts whose minute is no longer needed apart into their status's minute
        0 (each worker's rescue does, now and then), so that `stats` reads a few rows per
        queue."""
        async with self._transaction() as db:
            (now,) = next(iter(await db.execute_fetchall(SQL["now"])))
            params = {"now": now, "window": SUCCESS_WINDOW_SECONDS}
            folded: Counter[tuple[str, str]] = Counter()
            for queue, status, n in await db.execute_fetchall(SQL["fold_counts"], params):
                folded[queue, status] += n
            await db.executemany(
                SQL["add_to_count"],
                [
                    {"queue": queue, "status": status, "minute": 0, "n": n}
                    for (queue, status), n in folded.items()
                ],
            )

    async def cancel(self, job_id: str) -> Job | None:
        return await self._act_on_one("cancel", job_id)

    async def replay(self, job_id: str) -> Job | None:
        return await self._act_on_one("replay", job_id)

    async def run_now(self, job_id: str) -> Job | None:
        return await self._act_on_one("run_now", job_id)

    async def _act_on_one(self, name: str, job_id: str) -> Job | None:
        """Cancel, replay or run_now on one job; the job as the action left it, read in its
        transaction (after it, a worker could have claimed the job already)."""
        _, rows = await self._act(name, ONE_JOB, {"id": job_id, "limit": 1}, read_back=True)
        return job_from_row(rows[0], with_history=True) if rows else None

    async def delete_job(self, job_id: str) -> bool:
        params = {"id": job_id, "limit": 1}
        async with self._transaction() as db:
            deleted = list(
                await db.execute_fetchall(SQL["delete"].replace("{filter}", ONE_JOB), params)
            )
            # Under the same write lock: a job that is still there was left for running.
            running = not deleted and bool(await db.execute_fetchall(SQL["get"], params))
            dependents = bool(deleted and deleted[0]["has_dependents"])
            decided = await take_decided(db) if dependents else []
        self._announce_decided(decided)
        if deleted:
            if dependents:
                await self._notify_work()  # it may have released some (migration 15)
            return True
        if running:
            raise JobRunningError(job_id)
        return False

    async def replay_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return await self._batch("replay", where, after, limit)

    async def cancel_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return await self._batch("cancel", where, after, limit)

    async def delete_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return await self._batch("delete", where, after, limit)

    async def run_now_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return await self._batch("run_now", where, after, limit)

    async def _batch(self, name: str, where: JobFilter, after: int, limit: int) -> Batch:
        params = {
            "status": str(where.status),
            "queue": where.queue,
            "type": where.type,
            "after": after,
            "limit": limit,
        }
        chosen = " AND j.seq > :after" + equal_to(params, "status", "queue", "type", alias="j.")
        seqs, _ = await self._act(name, chosen, params)
        # Every job the statement chose is changed (it holds the write lock throughout), except
        # a replay's duplicates of a unique key: go on after the last change until none is left.
        return Batch(len(seqs), max(seqs) if seqs else None)

    async def _act(
        self, name: str, chosen: str, params: Mapping[str, Any], *, read_back: bool = False
    ) -> tuple[list[int], list[sqlite3.Row]]:
        """Run cancel, replay, run_now or delete on the jobs `chosen` picks; the seqs of those
        changed, and (`read_back`) the row of the job `params` names, as it left it. What it
        decided for their dependents is taken in its transaction."""
        async with self._transaction() as db:
            if name == "replay":
                await db.execute(SQL["let_go"].replace("{filter}", chosen), params)
            sql = SQL[name].replace("{filter}", chosen)
            rows = list(await db.execute_fetchall(sql, params))
            dependents = name != "run_now" and any(row["has_dependents"] for row in rows)
            decided = await take_decided(db) if dependents else []
            after = list(await db.execute_fetchall(SQL["get"], params)) if read_back else []
        self._announce_decided(decided)
        # A cancelled job of a limited queue may have been running: its slot is free. A job
        # with dependents cancelled or deleted may have released some (migration 15).
        freed = name == "cancel" and any(row["limited"] for row in rows)
        if freed or dependents or (name in ("replay", "run_now") and rows):
            await self._notify_work()
        return [row[0] for row in rows], after

    async def prune(self, older_than: float, statuses: Sequence[JobStatus]) -> int:
        params = {
            "older_than": older_than,
            "statuses": json.dumps([str(s) for s in statuses]),
            "limit": DELETE_BATCH,
        }
        return await self._change_in_batches("prune", params)


def _epoch(instant: datetime | None) -> float | None:
    """A bound of a time range in SQLite's epoch seconds, half a microsecond early: a stored
    time (a float with rounding noise) is compared as the microsecond `Job` shows it."""
    return None if instant is None else instant.timestamp() - 0.5e-6

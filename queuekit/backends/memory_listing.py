"""The memory backend's reads: jobs by id, a page of `list_jobs`, the records a bulk batch
picks, the queues and their counts, a batch's counts."""

from __future__ import annotations

import abc
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ..backend import Backend, JobFilter
from ..batches import BatchCounts
from ..job import Job, JobPage, JobStatus
from ..search import NO_SEARCH, JobSearch
from ..stats import QueueCounts
from .memory_counts import count_queue
from .rows import job_from_row

Record = dict[str, Any]


class MemoryReads(Backend):
    """`get_jobs`, `list_jobs`, `list_queues` and `stats` for `MemoryBackend`."""

    _jobs: dict[str, Record]
    _paused: set[str]

    @abc.abstractmethod
    def _now(self) -> float: ...

    @abc.abstractmethod
    def _with_edges(self, job: Job, record: Record) -> Job:
        """`job` with its parents and dependents."""

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        return [
            self._with_edges(job_from_row(record, with_history=True), record)
            for job_id in job_ids
            if (record := self._jobs.get(job_id)) is not None
        ]

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
        return list_page(
            self._jobs,
            queue=queue,
            status=status,
            type=type,
            limit=limit,
            cursor=cursor,
            search=search,
        )

    async def batch_counts(self, batch_id: str) -> BatchCounts:
        counts = Counter(r["status"] for r in self._jobs.values() if r["batch_id"] == batch_id)
        return BatchCounts.of(dict(counts))

    async def list_queues(self) -> list[str]:
        return sorted({record["queue"] for record in self._jobs.values()} | self._paused)

    async def stats(self, queue: str) -> QueueCounts:
        return count_queue(self._jobs.values(), queue, self._now())


def list_page(
    records: dict[str, Record],
    *,
    queue: str | None,
    status: JobStatus | None,
    type: str | None,
    limit: int,
    cursor: str | None,
    search: JobSearch,
) -> JobPage:
    """`Backend.list_jobs` over `records` (in enqueue order): newest first, below `cursor`."""
    before = int(cursor) if cursor is not None else None
    matches: list[Record] = []
    for record in reversed(records.values()):
        if before is not None and record["seq"] >= before:
            continue
        if (
            (queue is None or record["queue"] == queue)
            and (status is None or record["status"] == status)
            and (type is None or record["type"] == type)
            and search.matches(
                record["last_error"],
                record["created_at"],
                record["workflow_id"],
                record["batch_id"],
            )
        ):
            matches.append(record)
            if len(matches) > limit:
                break
    page = matches[:limit]
    next_cursor = str(page[-1]["seq"]) if len(matches) > limit else None
    return JobPage([job_from_row(record) for record in page], next_cursor)


def batch_of(records: Iterable[Record], where: JobFilter, after: int, limit: int) -> list[Record]:
    """The next `limit` records (in enqueue order) after seq `after` matching `where`."""
    return list(
        itertools.islice(
            (
                record
                for record in records
                if record["seq"] > after
                and record["status"] == where.status
                and (where.queue is None or record["queue"] == where.queue)
                and (where.type is None or record["type"] == where.type)
            ),
            limit,
        )
    )

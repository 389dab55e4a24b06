"""Which of the memory backend's job records a page of `list_jobs` or a bulk batch picks."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from ..backend import JobFilter
from ..job import JobPage, JobStatus
from ..search import JobSearch
from .rows import job_from_row

Record = dict[str, Any]


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
            and search.matches(record["last_error"], record["created_at"])
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

"""`Listing`: `RedisBackend.list_jobs`, pages merged across queues from lua/list.lua."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from ...backend import Backend
from ...job import Job, JobPage, JobStatus
from ...search import NO_SEARCH, JobSearch
from .calls import RedisCalls
from .index import JobIndex
from .keys import Keys
from .replies import job_from_hash

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LIST_LOOK = 1000
"""Jobs one listing script looks at, at most, when it filters (by status and type at once,
or by a search)."""


class Listing(Backend):
    """Listing jobs newest first by seq, every queue's page read in one round trip."""

    _calls: RedisCalls
    _keys: Keys
    _index: JobIndex

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
        """Newest first by seq, merged across queues. Each queue reads the set that holds its
        matches (`type:<t>`, else a workflow's `workflow:<id>`, else a batch's `batch:<id>`,
        else `status:<s>`, else `all`), skipping jobs of another status; a script looks at
        `LIST_LOOK` jobs at most, so a rare match may take several rounds. A search (error
        text, creation time, a workflow or batch when the set is not its own) is checked in the
        script on every job it looks at, and takes one round a call: its page may hold fewer
        jobs, with a `next_cursor`."""
        queues = [queue] if queue is not None else await self._index.queue_names()
        workflow, batch = search.workflow_id, search.batch_id
        source = (
            f"type:{type}"
            if type
            else f"workflow:{workflow}"
            if workflow
            else f"batch:{batch}"
            if batch
            else f"status:{status}"
            if status
            else "all"
        )
        # The set of a workflow or batch holds just its jobs.
        if source.startswith("workflow:"):
            search = dataclasses.replace(search, workflow_id=None)
        elif source.startswith("batch:"):
            search = dataclasses.replace(search, batch_id=None)
        want = limit + 1
        found: list[tuple[int, Job]] = []
        top = "+inf" if cursor is None else f"({int(cursor)}"
        terms = [
            search.error or "",
            _micros(search.created_after),
            _micros(search.created_before),
            search.workflow_id or "",
            search.batch_id or "",
        ]
        floor = 0
        while queues:
            args = [top, str(want), str(max(want, LIST_LOOK)), status or "", type or "", *terms]
            replies = await self._calls.eval_many(
                [
                    ("list", [*self._keys.bound(q, "list"), self._keys.of_queue(q, source)], args)
                    for q in queues
                ]
            )
            # A queue that may hold more looked down to its reply's first item: every match at
            # or above the highest of those is known, the ones below are read again next round.
            more = [int(reply[0]) for reply in replies if reply[0] != ""]
            floor = max(more, default=0)
            for reply in replies:
                matches = ((int(reply[i]), reply[i + 1]) for i in range(1, len(reply), 2))
                found += [(seq, job_from_hash(fields)) for seq, fields in matches if seq >= floor]
            if len(found) >= want or not more or search.any:
                break
            queues = [q for q, reply in zip(queues, replies, strict=True) if reply[0] != ""]
            top = f"({floor}"
        found.sort(key=lambda entry: entry[0], reverse=True)
        page = found[:limit]
        if len(found) > limit:
            next_cursor: str | None = str(page[-1][0])
        else:
            # A search's one round may leave jobs below `floor` unread: go on from there.
            next_cursor = str(floor) if search.any and floor > 0 else None
        return JobPage([job for _, job in page], next_cursor)


def _micros(instant: datetime | None) -> str:
    """An instant as list.lua compares creation times: epoch microseconds ('' = none)."""
    if instant is None:
        return ""
    return str((instant - EPOCH) // timedelta(microseconds=1))

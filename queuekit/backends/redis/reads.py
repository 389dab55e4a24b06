"""`JobReads`: `get_job` and `get_jobs`, each job with its parents and dependents."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ...backend import Backend
from ...job import Job, OnFailure, Parent
from .calls import RedisCalls
from .index import JobIndex
from .keys import Keys
from .replies import job_from_hash


class JobReads(Backend):
    """Reading jobs by id: their queues from the index, then per job its hash and its two edge
    lists (lua/_dependencies.lua), every job's in one pipelined round trip."""

    _calls: RedisCalls
    _keys: Keys
    _index: JobIndex

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        queues = await self._index.queues_of(job_ids)
        found = [(job_id, queues[job_id]) for job_id in job_ids if job_id in queues]
        replies = await self._calls.commands(
            [
                command
                for job_id, queue in found
                for command in (
                    ("HGETALL", self._keys.job(queue, job_id)),
                    ("LRANGE", self._keys.of_queue(queue, f"parents:{job_id}"), "0", "-1"),
                    ("LRANGE", self._keys.of_queue(queue, f"dependents:{job_id}"), "0", "-1"),
                )
            ]
        )
        jobs: list[Job] = []
        for n in range(len(found)):
            fields, parents, dependents = replies[3 * n : 3 * n + 3]
            if fields:
                jobs.append(
                    dataclasses.replace(
                        job_from_hash(fields, with_history=True),
                        parents=tuple(_parent(edge) for edge in parents),
                        dependents=tuple(edge.split("|", 1)[0] for edge in dependents),
                    )
                )
        return jobs


def _parent(edge: str) -> Parent:
    """A parent from its edge: '<id>|<on_failure>', then '|<queue>' when in another queue."""
    job_id, on_failure = edge.split("|")[:2]
    return Parent(job_id, OnFailure(on_failure))

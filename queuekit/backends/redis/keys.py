"""`Keys`: where a prefix's jobs live in Redis, a hash tag per queue and one for what spans them.

Each queue's keys share the hash tag `{<prefix>:<queue>}`, so a queue lives in one Cluster slot
and every script works inside one slot. The `{<prefix>}` slot holds the id -> queue index, the
set of queue names and the sequence counter that orders jobs across queues.
"""

from __future__ import annotations

from collections.abc import Sequence

from .scripts import script_keys

MEMBER_ID_OFFSET = 20
"""Ready and scheduled members are `<priority:4 digits><seq:16 digits><id>`."""


class Keys:
    """The key names of one prefix (a checked identifier)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        tag = "{" + prefix + "}"
        self.index, self.queues, self.seq = f"{tag}:index", f"{tag}:queues", f"{tag}:seq"
        self.types_indexed = f"{tag}:types_indexed"
        """Set once every job stored before the type index existed is in it."""
        self._script_keys = script_keys()
        self._bound: dict[tuple[str, str], list[str]] = {}

    def of_queue(self, queue: str, name: str) -> str:
        """The key `name` of `queue` (`ready`, `status:dead`, `signal`...)."""
        return "{" + self.prefix + ":" + queue + "}:" + name

    def bound(self, queue: str, script: str) -> list[str]:
        """The keys of `queue` that `script` binds, in its order."""
        keys = self._bound.get((queue, script))
        if keys is None:
            names = self._script_keys[script]
            keys = self._bound[queue, script] = [self.of_queue(queue, name) for name in names]
        return keys

    def job(self, queue: str, job_id: str) -> str:
        """The hash of a job."""
        return self.of_queue(queue, "job:" + job_id)

    def done(self, queue: str, job_id: str) -> str:
        """The list a finished job's waiters pop."""
        return self.of_queue(queue, "done:" + job_id)

    def jobs_and_done(self, queue: str, job_ids: Sequence[str]) -> list[str]:
        """Each job's hash and done list, in turn."""
        keys: list[str] = []
        for job_id in job_ids:
            keys += [self.job(queue, job_id), self.done(queue, job_id)]
        return keys

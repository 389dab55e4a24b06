"""`Keys`: where a prefix's jobs live in Redis, a hash tag per queue and a few for what spans them.

Each queue's keys share the hash tag `{<prefix>:<queue>}`, so a queue lives in one Cluster slot
and every script works inside one slot. The id -> queue index is split in `INDEX_SHARDS` hashes
tagged `{<prefix>#<n>}` (`#` is not allowed in a queue name, so no queue's tag can be one), so
that enqueues spread over a Cluster's nodes; the `{<prefix>}` slot holds the set of queue names.
A job's dependency edges are lists of its queue, `parents:<id>` and `dependents:<id>` (see
lua/_dependencies.lua).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

from .scripts import script_keys

MEMBER_ID_OFFSET = 20
"""Ready and scheduled members are `<priority:4 digits><seq:16 digits><id>`."""
REACH = "reach:"
"""The name scripts bind for the prefix of the keys a dependency decision may touch."""
INDEX_SHARDS = 16
"""Hashes the id -> queue index is split in, by CRC-32 of the id (fixed: changing it would
hide every indexed job from lookups)."""


class Keys:
    """The key names of one prefix (a checked identifier). `spans_slots`: whether one script
    may touch keys of several slots now (a single server, not a Cluster nor a sharding proxy)."""

    def __init__(self, prefix: str, spans_slots: Callable[[], bool]) -> None:
        self.prefix = prefix
        self._spans_slots = spans_slots
        tag = "{" + prefix + "}"
        self.queues = f"{tag}:queues"
        self.index_shards = [f"{{{prefix}#{n}}}:index" for n in range(INDEX_SHARDS)]
        self.types_indexed = f"{tag}:types_indexed"
        """Set once every job stored before the type index existed is in it."""
        self.unsharded_index = f"{tag}:index"
        """The index as versions before the shards kept it, emptied into them at open."""
        self.index_sharded = f"{tag}:index_sharded"
        """Set once `unsharded_index` has been moved into the shards."""
        self.events = f"{tag}:events"
        """The sharded pub/sub channel of job events (see events.py)."""
        self._script_keys = script_keys()
        self._bound: dict[tuple[str, str, bool], list[str]] = {}

    def workers(self) -> list[str]:
        """The worker registry's keys, in the `{<prefix>}` slot: the set of worker ids by when
        they are forgotten, and the prefix of each worker's hash (see lua/workers.lua)."""
        tag = "{" + self.prefix + "}"
        return [f"{tag}:workers", f"{tag}:worker:"]

    def index_of(self, job_id: str) -> str:
        """The index shard that holds `job_id`'s queue: the one place a shard is chosen."""
        return self.index_shards[zlib.crc32(job_id.encode()) % INDEX_SHARDS]

    def of_queue(self, queue: str, name: str) -> str:
        """The key `name` of `queue` (`ready`, `status:dead`, `signal`...)."""
        return "{" + self.prefix + ":" + queue + "}:" + name

    def bound(self, queue: str, script: str) -> list[str]:
        """The keys of `queue` that `script` binds, in its order."""
        spans = self._spans_slots()
        keys = self._bound.get((queue, script, spans))
        if keys is None:
            names = self._script_keys[script]
            keys = [
                self.reach(queue, spans) if n == REACH else self.of_queue(queue, n) for n in names
            ]
            self._bound[queue, script, spans] = keys
        return keys

    def reach(self, queue: str, spans: bool) -> str:
        """The prefix of the keys a script of `queue` may touch for the jobs that depend on
        its jobs, and for their parents: those of every queue where a job's parents may be in
        any queue (`spans`), else the queue's own (a parent is in its slot)."""
        return "{" + self.prefix + ":" if spans else self.of_queue(queue, "")

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

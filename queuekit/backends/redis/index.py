"""`JobIndex`: the sharded id -> queue index and the queue-name set, the keys that span queues."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...job import Job
from .calls import Call, RedisCalls
from .keys import Keys
from .scripts import BATCH

CACHE_LIMIT = 100_000
"""Job ids whose queue this process remembers (from its claims) before it forgets them all."""


class JobIndex:
    """Finds a job's queue (from this process's claims, else the index) and keeps the index."""

    def __init__(self, calls: RedisCalls, keys: Keys) -> None:
        self._calls = calls
        self._keys = keys
        self._queue_cache: dict[str, str] = {}

    def by_shard(self, job_ids: Iterable[str]) -> dict[str, list[str]]:
        """The ids grouped by the index shard that holds them."""
        shards: dict[str, list[str]] = {}
        for job_id in job_ids:
            shards.setdefault(self._keys.index_of(job_id), []).append(job_id)
        return shards

    async def queue_names(self) -> list[str]:
        names = (await self._calls.commands([("SMEMBERS", self._keys.queues)]))[0]
        return sorted(names)

    async def lookup(self, job_id: str) -> str | None:
        return (await self.queues_of([job_id])).get(job_id)

    async def queues_of(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Each job's queue: from the jobs this client claimed, else from the index."""
        found = {job_id: queue for job_id in job_ids if (queue := self._queue_cache.get(job_id))}
        unknown = sorted(set(job_ids) - found.keys())
        if unknown:
            shards = self.by_shard(unknown)
            replies = await self._calls.commands(
                [("HMGET", shard, *ids) for shard, ids in shards.items()]
            )
            for ids, queues in zip(shards.values(), replies, strict=True):
                found.update((job_id, q) for job_id, q in zip(ids, queues, strict=True) if q)
            missing = [job_id for job_id in unknown if job_id not in found]
            if missing:
                found.update(await self._search_queues(missing))
        return found

    async def _search_queues(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Find jobs missing from the index in every queue, and index them again.

        Two enqueues racing with one explicit id can leave the job stored but unindexed: the
        loser gives back an index entry the winner's job now uses. This finds such jobs.
        """
        names = await self.queue_names()
        probes = [(job_id, queue) for job_id in job_ids for queue in names]
        exists = await self._calls.commands(
            [("EXISTS", self._keys.job(queue, job_id)) for job_id, queue in probes]
        )
        found = {job_id: queue for (job_id, queue), hit in zip(probes, exists, strict=True) if hit}
        await self._calls.commands(
            [("HSETNX", self._keys.index_of(job_id), job_id, q) for job_id, q in found.items()]
        )
        return found

    def remember(self, job: Job) -> None:
        """Note the queue of a job this process claimed, to save its next lookups."""
        if len(self._queue_cache) >= CACHE_LIMIT:
            self._queue_cache.clear()
        self._queue_cache[job.id] = job.queue

    async def unindex(self, entries: Iterable[tuple[str, Sequence[str]]]) -> None:
        """Drop (queue, ids) from the index where the ids still point at that queue: one
        `unindex` call per shard, all in one round trip."""
        pairs: dict[str, list[str]] = {}
        for queue, ids in entries:
            for job_id in ids:
                pairs.setdefault(self._keys.index_of(job_id), []).extend((job_id, queue))
        calls: list[Call] = [("unindex", [shard], args) for shard, args in pairs.items()]
        await self._calls.eval_many(calls)

    async def shard_index(self) -> None:
        """Move the entries of the index as earlier versions kept it (one hash in `{P}`) into
        the shards, once. Several processes may do it at once: an entry already moved is left
        as it is (HSETNX), and the flag is set only once every entry is in its shard."""
        if (await self._calls.commands([("GET", self._keys.index_sharded)]))[0]:
            return
        old = self._keys.unsharded_index
        cursor = "0"
        while True:
            reply = await self._calls.commands([("HSCAN", old, cursor, "COUNT", str(BATCH))])
            cursor, entries = str(reply[0][0]), _pairs(reply[0][1])
            if entries:
                await self._calls.commands(
                    [("HSETNX", self._keys.index_of(job_id), job_id, q) for job_id, q in entries]
                )
                await self._calls.commands([("HDEL", old, *(job_id for job_id, _ in entries))])
            if cursor == "0":
                break
        await self._calls.commands([("SET", self._keys.index_sharded, "1")])

    async def index_types(self) -> None:
        """Index the task type of every job stored before the type index existed, once."""
        if (await self._calls.commands([("GET", self._keys.types_indexed)]))[0]:
            return
        for queue in await self.queue_names():
            after = "0"
            while after:
                keys = self._keys.bound(queue, "index_types")
                after = await self._calls.eval("index_types", keys, [after, str(BATCH)])
        await self._calls.commands([("SET", self._keys.types_indexed, "1")])


def _pairs(fields: Mapping[str, str] | Sequence[Any]) -> list[tuple[str, str]]:
    """An HSCAN page's (field, value) pairs, whether redis-py made it a dict or left it flat."""
    if isinstance(fields, Mapping):
        return list(fields.items())
    flat = iter(fields)
    return list(zip(flat, flat, strict=True))

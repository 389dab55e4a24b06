"""`Enqueuer`: storing new jobs, in one script on a single server, in two steps on a Cluster.

Every job's id is reserved in its shard of the id -> queue index (one call per shard touched,
sent together, with the naming of queues this backend has not named lately); then each queue's
jobs are stored by one script in that queue's slot, which numbers them from the queue's own
seq. On a single server one script does both (it may span slots); on a Cluster, or when an id
is indexed under another queue, they are two round trips.

A job's parents are found first (each earlier in the call, else in the index); a script that
finds one missing stores nothing. On a Cluster a parent must be in its job's slot.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator, Sequence

from redis.crc import key_slot

from ...errors import InvalidOptionError, JobExistsError, UnknownParentError
from ...job import Job, NewJob
from .calls import Call, RedisCalls
from .index import JobIndex
from .keys import Keys
from .replies import enqueue_args, job_from_hash, new_job

NAME_AGAIN_SECONDS = 60.0
"""How long a backend trusts that a queue it named is still in `{<prefix>}:queues`: after
that, its next enqueue there names it again, so a set lost meanwhile (deleted, or the write
lost in a failover) is made whole within a minute of the queue's next enqueue."""


class Enqueuer:
    """The enqueues of one backend."""

    def __init__(self, calls: RedisCalls, keys: Keys, index: JobIndex) -> None:
        self._calls = calls
        self._keys = keys
        self._index = index
        self._named: dict[str, float] = {}
        """Queues this backend added to the queue-name set, with when (monotonic clock)."""

    def _unnamed(self, queues: Iterable[str]) -> list[str]:
        """The queues to add to the queue-name set with this enqueue."""
        now = time.monotonic()
        return [
            q for q in queues if now - self._named.get(q, -NAME_AGAIN_SECONDS) >= NAME_AGAIN_SECONDS
        ]

    def _have_named(self, queues: Collection[str]) -> None:
        now = time.monotonic()
        for queue in queues:
            self._named[queue] = now

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        """One script call on a single server; on a Cluster (or when an id is indexed under
        another queue) two round trips: the reservation, then the jobs of each queue."""
        if not jobs:
            return []
        ids = [job.id for job in jobs]
        if len(set(ids)) < len(ids):
            raise JobExistsError(next(i for n, i in enumerate(ids) if i in ids[:n]))
        parents = await self._parent_queues(jobs)
        edges = [_edges(job, queues) for job, queues in zip(jobs, parents, strict=True)]
        by_queue: dict[str, list[int]] = {}
        for i, job in enumerate(jobs):
            by_queue.setdefault(job.queue, []).append(i)
        if self._calls.cross_slot:
            stored = await self._enqueue_at_once(jobs, by_queue, edges)
            if stored is not None:
                return stored
        if not self._calls.cross_slot:  # (a sharding proxy may have just refused the above)
            self._check_slots(jobs, parents)
        return await self._enqueue_in_two_steps(jobs, _groups(jobs, parents), edges)

    async def _parent_queues(self, jobs: Sequence[NewJob]) -> list[list[str]]:
        """The queue of each job's parents: an earlier job's of the call, else the index's
        (one round trip); `UnknownParentError` for a parent in neither."""
        position = {job.id: i for i, job in enumerate(jobs)}
        outside = {p.job_id for job in jobs for p in job.parents if p.job_id not in position}
        indexed = await self._index.queues_of(sorted(outside)) if outside else {}
        found: list[list[str]] = []
        for i, job in enumerate(jobs):
            queues: list[str] = []
            for parent in job.parents:
                at = position.get(parent.job_id)
                queue = indexed.get(parent.job_id) if at is None else jobs[at].queue
                if queue is None or (at is not None and at >= i):
                    raise UnknownParentError(parent.job_id)
                queues.append(queue)
            found.append(queues)
        return found

    def _check_slots(self, jobs: Sequence[NewJob], parents: Sequence[list[str]]) -> None:
        """Where a script works in one slot (a Cluster), refuse a parent in another slot than
        its job's: no script could decide the job when that parent ends."""
        for job, queues in zip(jobs, parents, strict=True):
            slot = key_slot(self._keys.of_queue(job.queue, "").encode())
            for parent, queue in zip(job.parents, queues, strict=True):
                if key_slot(self._keys.of_queue(queue, "").encode()) != slot:
                    raise InvalidOptionError(
                        f"job {job.id!r} of queue {job.queue!r} cannot wait for job "
                        f"{parent.job_id!r} of queue {queue!r}: on a Redis Cluster a job's "
                        "parents must be in its own queue (its slot; see docs/redis.md)"
                    )

    async def _enqueue_at_once(
        self, jobs: Sequence[NewJob], by_queue: dict[str, list[int]], edges: Sequence[str]
    ) -> list[Job] | None:
        """Reserve and store in one script (a single server lets one script span slots), all
        or nothing; None, having written nothing, when an id is indexed under another queue,
        whose job only the two-step path can look for."""
        names = self._unnamed(by_queue)
        keys = [self._keys.queues]
        args = [str(len(by_queue)), str(len(names)), *names]
        for queue, members in by_queue.items():
            keys += self._keys.bound(queue, "reserve_enqueue")
            keys += [self._keys.job(queue, jobs[i].id) for i in members]
            keys += [self._keys.index_of(jobs[i].id) for i in members]
            args += [queue, str(len(members))]
            for i in members:
                args += enqueue_args(jobs[i], i, False, edges[i])
        result = await self._calls.eval_cross_slot("reserve_enqueue", keys, args, replicated=True)
        if result[0] == "fallback":
            return None
        _raise_refusal(result)
        self._have_named(names)
        outcomes = iter(result[2:])
        parts = [(members, result[1], outcomes) for members in by_queue.values()]
        # Nothing was reserved for a duplicate, so nothing is given back.
        return await self._stored(jobs, parts, set())

    async def _enqueue_in_two_steps(
        self, jobs: Sequence[NewJob], groups: list[tuple[str, list[int]]], edges: Sequence[str]
    ) -> list[Job]:
        """Reserve the ids in their index shards, then store each group's jobs (see `_groups`)
        with one script call per group, pipelined in order: two round trips for any number of
        jobs. A group refused (an id that exists, a parent missing) stores nothing, and the
        call raises; the groups before and after it keep what they stored."""
        base, owners = await self._reserve(
            [(job.id, job.queue, "") for job in jobs],
            self._unnamed(dict.fromkeys(queue for queue, _ in groups)),
        )
        reserved = {i for i, owner in enumerate(owners) if owner == ""}
        taken = await self._taken(jobs, owners, reserved)
        refused = [jobs[i].id for i in sorted(taken) if jobs[i].unique_key is None]
        if refused:
            await self._release(jobs, reserved)
            raise JobExistsError(refused[0])

        calls: list[Call] = []
        for queue, members in groups:
            args = [str(base), queue, str(len(members))]
            for i in members:
                args += enqueue_args(jobs[i], i, i in taken, edges[i])
            keys = self._keys.bound(queue, "enqueue") + [
                self._keys.job(queue, jobs[i].id) for i in members
            ]
            calls.append(("enqueue", keys, args))
        results = await self._calls.eval_many(calls, replicated=True)

        failed = [
            (members, result)
            for (_, members), result in zip(groups, results, strict=True)
            if result[0] != "ok"
        ]
        if failed:
            await self._release(jobs, {i for members, _ in failed for i in members} & reserved)
            _raise_refusal(failed[0][1])
        parts = [
            (members, result[1], iter(result[2:]))
            for (_, members), result in zip(groups, results, strict=True)
        ]
        return await self._stored(jobs, parts, reserved)

    async def _stored(
        self,
        jobs: Sequence[NewJob],
        parts: Iterable[tuple[list[int], str, Iterator[str]]],
        reserved: set[int],
    ) -> list[Job]:
        """The jobs an enqueue stored or found: per group its positions in `jobs`, its
        created_at and one outcome per job ('+' and what `new_job` reads, or '=<holder of
        the key>')."""
        stored: list[Job | None] = [None] * len(jobs)
        duplicates: dict[int, str] = {}
        for members, created_at, outcomes in parts:
            for i in members:
                outcome = next(outcomes)
                if outcome[0] == "+":
                    stored[i] = new_job(jobs[i], created_at, outcome[1:])
                else:
                    duplicates[i] = outcome[1:]
        if duplicates:
            await self._resolve_duplicates(jobs, stored, duplicates, reserved)
        assert all(job is not None for job in stored)
        return [job for job in stored if job is not None]

    async def _reserve(
        self, entries: Sequence[tuple[str, str, str]], names: Sequence[str] = ()
    ) -> tuple[int, list[str]]:
        """Reserve (id, queue, expected owner) entries, one `reserve` call per index shard,
        and name `names` in the same round trip. Returns the latest clock reading of the
        shards (the seq base of the call's jobs, the same for every queue) and per entry ''
        (reserved) or its owner."""
        shards: dict[str, list[int]] = {}
        for n, (job_id, _, _) in enumerate(entries):
            shards.setdefault(self._keys.index_of(job_id), []).append(n)
        calls: list[Call] = [
            ("reserve", [shard], [part for n in positions for part in entries[n]])
            for shard, positions in shards.items()
        ]
        if names:
            calls.append(("name_queues", [self._keys.queues], list(names)))
        replies = await self._calls.eval_many(calls)
        self._have_named(names)
        owners = [""] * len(entries)
        base = 0
        for positions, (clock, *reply) in zip(shards.values(), replies[: len(shards)], strict=True):
            base = max(base, int(clock))
            for n, owner in zip(positions, reply, strict=True):
                owners[n] = owner
        return base, owners

    async def _taken(
        self, jobs: Sequence[NewJob], owners: list[str], reserved: set[int]
    ) -> set[int]:
        """Positions of jobs whose id belongs to a job of another queue.

        An index entry whose job does not exist (its enqueue or delete was cut short) is
        taken over, so a retried enqueue with the same explicit id succeeds.
        """
        foreign = [i for i, owner in enumerate(owners) if owner not in ("", jobs[i].queue)]
        if not foreign:
            return set()
        exists = await self._calls.commands(
            [("EXISTS", self._keys.job(owners[i], jobs[i].id)) for i in foreign]
        )
        taken = {i for i, found in zip(foreign, exists, strict=True) if found}
        stale = [i for i in foreign if i not in taken]
        if stale:
            _, again = await self._reserve([(jobs[i].id, jobs[i].queue, owners[i]) for i in stale])
            for i, owner in zip(stale, again, strict=True):
                if owner == "":
                    reserved.add(i)
                elif owner != jobs[i].queue:
                    taken.add(i)
        return taken

    async def _release(self, jobs: Sequence[NewJob], positions: set[int]) -> None:
        """Give back index entries this enqueue reserved but did not use."""
        by_queue: dict[str, list[str]] = {}
        for i in sorted(positions):
            by_queue.setdefault(jobs[i].queue, []).append(jobs[i].id)
        await self._index.unindex(by_queue.items())

    async def _resolve_duplicates(
        self,
        jobs: Sequence[NewJob],
        stored: list[Job | None],
        duplicates: dict[int, str],
        reserved: set[int],
    ) -> None:
        """Fill in the live job that holds each duplicate's unique key."""
        in_batch = {job.id: job for job in stored if job is not None}
        outside = [i for i, holder in duplicates.items() if holder not in in_batch]
        fetched = await self._calls.commands(
            [("HGETALL", self._keys.job(jobs[i].queue, duplicates[i])) for i in outside]
        )
        found = {
            i: job_from_hash(fields) for i, fields in zip(outside, fetched, strict=True) if fields
        }
        retry = [i for i in outside if i not in found]
        for i, holder in duplicates.items():
            stored[i] = in_batch.get(holder) or found.get(i)
        await self._release(jobs, {i for i in duplicates if i in reserved and i not in retry})
        for i in retry:
            # The holder finished and was deleted meanwhile: the key is free again.
            stored[i] = (await self.enqueue_many([jobs[i]]))[0]


def _edges(job: NewJob, queues: Sequence[str]) -> str:
    """The job's parents as the scripts read them: '<id>|<on_failure>', then '|<queue>' for
    a parent of another queue, joined by ',' (lua/_dependencies.lua)."""
    return ",".join(
        f"{parent.job_id}|{parent.on_failure}" + ("" if queue == job.queue else f"|{queue}")
        for parent, queue in zip(job.parents, queues, strict=True)
    )


def _groups(jobs: Sequence[NewJob], parents: Sequence[list[str]]) -> list[tuple[str, list[int]]]:
    """The script calls of a two-step enqueue: each queue's jobs, or, when a job waits for an
    earlier job of the call in another queue, each run of jobs of one queue in call order
    (pipelined in order, so that the parent's call stores it first)."""
    position = {job.id: i for i, job in enumerate(jobs)}
    across = any(
        queue != job.queue and parent.job_id in position
        for job, queues in zip(jobs, parents, strict=True)
        for parent, queue in zip(job.parents, queues, strict=True)
    )
    groups: list[tuple[str, list[int]]] = []
    by_queue: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        if across:
            if not groups or groups[-1][0] != job.queue:
                groups.append((job.queue, []))
            groups[-1][1].append(i)
        elif job.queue not in by_queue:
            by_queue[job.queue] = [i]
            groups.append((job.queue, by_queue[job.queue]))
        else:
            by_queue[job.queue].append(i)
    return groups


def _raise_refusal(result: Sequence[str]) -> None:
    """Raise what an enqueue script that stored nothing answered, if it did."""
    if result[0] == "exists":
        raise JobExistsError(result[1])
    if result[0] == "unknown":
        raise UnknownParentError(result[1])

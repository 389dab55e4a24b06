"""`Enqueuer`: storing new jobs, in one script on a single server, in two steps on a Cluster.

Every job's id is reserved in its shard of the id -> queue index (one call per shard touched,
sent together, with the naming of queues this backend has not named lately); then each queue's
jobs are stored by one script in that queue's slot, which numbers them from the queue's own
seq. On a single server one script does both (it may span slots); on a Cluster, or when an id
is indexed under another queue, they are two round trips.

A job's parents are found first (each earlier in the call, else in the index); a script that
finds one missing stores nothing. On a Cluster a parent must be in its job's slot. A call
weighing more than `CHUNK` jobs (an edge weighs a quarter) goes in chunks, one after another
(`_enqueue_in_chunks`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Iterable, Iterator, Sequence

from redis.crc import key_slot

from ...errors import InvalidOptionError, JobExistsError, UnknownParentError
from ...job import Job, NewJob
from .calls import Call, RedisCalls
from .index import JobIndex
from .keys import Keys
from .replies import enqueue_args, job_from_hash, new_job

Edges = tuple[str, int]
"""A job's edges as the scripts read them (`_edges`), and how many parents it has in all."""

CHUNK = 1000
"""Jobs one enqueue script stores at most: a bigger call goes in chunks, so that no script
holds Redis for long."""
EDGES_PER_JOB = 4
"""Parent edges that cost an enqueue script about what one job does, or more (a push or two
each, against a dozen commands: about 3 µs against 22, measured on 2026-11-30), so a chunk
holds `CHUNK` jobs' worth at most. Twice as many made no difference to a workflow's enqueue."""
CHUNK_WEIGHT = CHUNK * EDGES_PER_JOB
"""A chunk's weight, in edges: a job weighs `EDGES_PER_JOB`, an edge one (`_weight`)."""
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
        another queue) two round trips: the reservation, then the jobs of each queue. A call
        weighing more than a chunk goes in chunks (`_enqueue_in_chunks`)."""
        if not jobs:
            return []
        ids = [job.id for job in jobs]
        if len(set(ids)) < len(ids):
            raise JobExistsError(next(i for n, i in enumerate(ids) if i in ids[:n]))
        parents = await self._parent_queues(jobs)
        if sum(map(_weight, jobs)) > CHUNK_WEIGHT:
            return await self._enqueue_in_chunks(jobs, parents)
        return await self._enqueue(jobs, parents, [len(job.parents) for job in jobs])

    async def _enqueue(
        self, jobs: Sequence[NewJob], parents: Sequence[list[str]], counts: Sequence[int]
    ) -> list[Job]:
        """Store `jobs`, whose parents are in `parents` (their queues) and number `counts`
        in all (more than those given where the rest are linked after: `_link`)."""
        edges = [
            (_edges(job, queues), count)
            for job, queues, count in zip(jobs, parents, counts, strict=True)
        ]
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

    async def _enqueue_in_chunks(
        self, jobs: Sequence[NewJob], parents: Sequence[list[str]]
    ) -> list[Job]:
        """Store a big call as the same enqueues in chunks of `CHUNK_WEIGHT` at most, one
        script call each, in call order; a job with more parents than a chunk takes is stored
        with the first of them and linked to the others by `link` calls right after, waiting
        until the last is linked. Each chunk is all or nothing, not the call: ids already
        stored are refused before any chunk is, but a refusal only a chunk finds (an id
        stored, or a parent deleted, meanwhile) leaves the chunks before it stored, and a call
        cut short leaves its jobs so far (a job linked in part waits until deleted)."""
        if not self._calls.cross_slot:
            self._check_slots(jobs, parents)
        await self._refuse_stored(jobs)
        stored: list[Job] = []
        for positions, cut in _chunks(jobs):
            last = positions[-1]
            chunk = [jobs[i] for i in positions]
            queues = [parents[i] for i in positions]
            if cut is not None:
                chunk[-1] = dataclasses.replace(chunk[-1], parents=jobs[last].parents[:cut])
                queues[-1] = parents[last][:cut]
            stored += await self._enqueue(chunk, queues, [len(jobs[i].parents) for i in positions])
            all_parents = jobs[last].parents
            for start in range(cut or len(all_parents), len(all_parents), CHUNK_WEIGHT):
                end = start + CHUNK_WEIGHT
                piece = dataclasses.replace(jobs[last], parents=all_parents[start:end])
                stored[-1] = await self._link(piece, parents[last][start:end])
        return stored

    async def _refuse_stored(self, jobs: Sequence[NewJob]) -> None:
        """Raise `JobExistsError` for the first id of `jobs` that a stored job has (but for
        a request with a key, whose holder may answer it), one lookup per index shard and one
        EXISTS per id found, all in two round trips."""
        plain = [job for job in jobs if job.unique_key is None and job.debounce_key is None]
        shards = self._index.by_shard(job.id for job in plain)
        replies = await self._calls.commands(
            [("HMGET", shard, *ids) for shard, ids in shards.items()]
        )
        owners = {
            job_id: queue
            for ids, queues in zip(shards.values(), replies, strict=True)
            for job_id, queue in zip(ids, queues, strict=True)
            if queue
        }
        found = [job.id for job in plain if job.id in owners]
        exists = await self._calls.commands(
            [("EXISTS", self._keys.job(owners[job_id], job_id)) for job_id in found]
        )
        for job_id, count in zip(found, exists, strict=True):
            if int(count):
                raise JobExistsError(job_id)

    async def _link(self, job: NewJob, queues: Sequence[str]) -> Job:
        """Link a stored job to more of its parents (`job.parents`, of queues `queues`); the
        job as it then is."""
        keys = [*self._keys.bound(job.queue, "link"), self._keys.job(job.queue, job.id)]
        reply = await self._calls.eval("link", keys, [job.id, _edges(job, queues)], replicated=True)
        if reply[0] == "unknown":
            raise UnknownParentError(reply[1])
        return job_from_hash(reply[1])

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
        self, jobs: Sequence[NewJob], by_queue: dict[str, list[int]], edges: Sequence[Edges]
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
                args += enqueue_args(jobs[i], i, False, *edges[i])
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
        self, jobs: Sequence[NewJob], groups: list[tuple[str, list[int]]], edges: Sequence[Edges]
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
        refused = [
            jobs[i].id
            for i in sorted(taken)
            if jobs[i].unique_key is None and jobs[i].debounce_key is None
        ]
        if refused:
            await self._release(jobs, reserved)
            raise JobExistsError(refused[0])

        calls: list[Call] = []
        for queue, members in groups:
            args = [str(base), queue, str(len(members))]
            for i in members:
                args += enqueue_args(jobs[i], i, i in taken, *edges[i])
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
        parts: Iterable[tuple[list[int], str, Iterator[str | list[str]]]],
        reserved: set[int],
    ) -> list[Job]:
        """The jobs an enqueue stored or found: per group its positions in `jobs`, its
        created_at and one outcome per job ('+' and what `new_job` reads, or the fields of the
        job as it is: one cancelled at once, or the holder of the request's key). A reservation
        a holder's answer left unused is given back."""
        stored: dict[int, Job] = {}
        for members, created_at, outcomes in parts:
            for i in members:
                outcome = next(outcomes)
                if isinstance(outcome, str):
                    stored[i] = new_job(jobs[i], created_at, outcome[1:])
                else:
                    stored[i] = job_from_hash(outcome)
        await self._release(jobs, {i for i in reserved if stored[i].id != jobs[i].id})
        return [stored[i] for i in range(len(jobs))]

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


def _weight(job: NewJob) -> int:
    """What a job and its parent edges weigh in a chunk."""
    return EDGES_PER_JOB + len(job.parents)


def _chunks(jobs: Sequence[NewJob]) -> list[tuple[list[int], int | None]]:
    """The chunks of a big call (`_enqueue_in_chunks`): the positions of the jobs of each,
    `CHUNK_WEIGHT` at most, and how many parents its last job is stored with, when it has
    more than the chunk takes (None: all of them)."""
    chunks: list[tuple[list[int], int | None]] = []
    current: list[int] = []
    room = CHUNK_WEIGHT
    for i, job in enumerate(jobs):
        weight = _weight(job)
        if weight > room and current:
            chunks.append((current, None))
            current, room = [], CHUNK_WEIGHT
        if weight > room:
            chunks.append(([i], CHUNK_WEIGHT - EDGES_PER_JOB))
        else:
            current.append(i)
            room -= weight
    if current:
        chunks.append((current, None))
    return chunks


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

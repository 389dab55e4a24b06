"""`RedisBackend`: jobs in Redis (or a Redis Cluster), every state change one Lua script.

Layout (keys.py, docs/redis.md): each queue's keys share one hash tag, so a queue lives in one
Cluster slot and every script works inside one slot, with every key it touches passed in KEYS;
what spans queues (index.py) is the id -> queue index, in shards of its own, and the queue
names. (On a single server a job may wait for jobs of any queue: the scripts that decide it
then declare the prefix of every queue's keys; see keys.py.) The parts: calls.py (clients,
scripts by SHA), scripts.py and lua/ (the scripts), enqueue.py, claim.py, reads.py,
listing.py, batches.py, replies.py, url.py.
Time is Redis's own (`TIME` inside the scripts), never the client's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Self

import anyio
from redis.asyncio import RedisCluster

from ...backend import Backend, Batch, JobFilter, Rescued
from ...errors import InvalidOptionError, JobRunningError
from ...job import Attempt, Job, JobStatus, NewJob
from ...limits import Limits, LimitUsage
from ...progress import NO_UPDATE, ProgressUpdate
from ...stats import SUCCESS_WINDOW_SECONDS, QueueCounts
from ...validation import check_identifier
from ..batching import BatchedFinishes, Finish, FinishBatcher
from ..url_options import options_of_url
from .activity import ActivityLog
from .batches import BatchCounting
from .calls import MAX_BLOCK_SECONDS, Call, Client, RedisCalls
from .cancels import CancelFeed
from .claim import Claimer
from .enqueue import Enqueuer
from .events import RedisEvents
from .expiry import expire_queues
from .index import JobIndex
from .keys import Keys
from .limits import FlowControl
from .listing import Listing
from .reads import JobReads
from .replies import job_from_hash, micros
from .scripts import BATCH
from .url import parse_url
from .workers import Workers

DEFAULT_PREFIX = "queuekit"


class RedisBackend(
    RedisEvents, BatchedFinishes, Workers, ActivityLog, Listing, BatchCounting, JobReads, Backend
):
    """Jobs in Redis through `redis.asyncio`: a plain server, a Cluster, or through Sentinel.

    Build it from a URL (`redis://`, `rediss://`, `redis+sentinel://`; see url.py) or
    around an existing client (`RedisBackend(client=...)`, a `Redis` or a `RedisCluster`),
    which it does not close. With `wait_replicas=N`, an enqueue returns only once N replicas
    have it (Redis `WAIT`), and raises `BackendUnavailableError` if they do not in time.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Client | None = None,
        prefix: str | None = None,
        strict_keys: bool = False,
        wait_replicas: int | None = None,
    ) -> None:
        if (url is None) == (client is None):
            raise InvalidOptionError("RedisBackend takes a URL or a client, not both or neither")
        self.url = url
        target = None if url is None else parse_url(url)
        cluster = isinstance(client, RedisCluster)
        if target is not None:
            cluster = target.cluster
            prefix = target.prefix if prefix is None else prefix
            if wait_replicas is None:
                wait_replicas = target.wait_replicas
        self.prefix = check_identifier(
            DEFAULT_PREFIX if prefix is None else prefix, "Redis key prefix"
        )
        self.wait_replicas = wait_replicas or 0
        if self.wait_replicas < 0 or (self.wait_replicas and cluster):
            raise InvalidOptionError("wait_replicas takes a number >= 0, and no Cluster")
        self._calls = RedisCalls(
            target,
            client,
            cluster=cluster,
            strict_keys=strict_keys,
            wait_replicas=self.wait_replicas,
        )
        self._calls.on_decided = self._publish_decided
        self._keys = Keys(self.prefix, lambda: self._calls.cross_slot)
        self._index = JobIndex(self._calls, self._keys)
        self._enqueuer = Enqueuer(self._calls, self._keys, self._index)
        self._claimer = Claimer(self._calls, self._keys, self._index)
        self._flow = FlowControl(self._calls, self._keys)
        self._batcher = self._new_batcher()
        self._cancels = CancelFeed(self._calls, self._keys)

    @classmethod
    def from_url(cls, url: str) -> Self:
        with options_of_url("Redis"):
            return cls(url)

    def _new_batcher(self) -> FinishBatcher:
        return FinishBatcher(self._write_finishes, window=0.0, max_size=BATCH)

    async def open(self) -> None:
        if self._calls.is_open:
            return
        if self._batcher.closed:
            self._batcher = self._new_batcher()
        try:
            await self._calls.open()
            await self._index.shard_index()
            await self._index.index_types()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        await self._stop_events()
        await self._cancels.close()
        await self._batcher.close()
        await self._calls.close()

    # Producing

    async def enqueue(self, job: NewJob) -> Job:
        return (await self.enqueue_many([job]))[0]

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        return await self._enqueuer.enqueue_many(jobs)

    # Consuming

    async def claim(
        self, slots: Mapping[str, int], *, limit: int, lease: float, worker_id: str
    ) -> list[Job]:
        return await self._claimer.claim(slots, limit=limit, lease=lease, worker_id=worker_id)

    async def heartbeat(
        self,
        attempts: Sequence[Attempt],
        *,
        lease: float,
        progress: Mapping[Attempt, ProgressUpdate] | None = None,
    ) -> set[Attempt]:
        queues = await self._index.queues_of([attempt.job_id for attempt in attempts])
        lost = {attempt for attempt in attempts if attempt.job_id not in queues}
        groups: dict[str, list[Attempt]] = {}
        for attempt in attempts:
            if attempt.job_id in queues:
                groups.setdefault(queues[attempt.job_id], []).append(attempt)
        calls: list[Call] = []
        for queue, group in groups.items():
            keys = self._keys.bound(queue, "heartbeat") + [
                self._keys.job(queue, a.job_id) for a in group
            ]
            args = [str(micros(lease))]
            for attempt in group:
                update = (progress or {}).get(attempt, NO_UPDATE)
                args += [attempt.job_id, attempt.token, *_progress_args(update)]
            calls.append(("heartbeat", keys, args))
        for group, positions in zip(
            groups.values(), await self._calls.eval_many(calls), strict=True
        ):
            lost.update(group[position - 1] for position in positions)
        return lost

    async def _write_finishes(self, batch: list[Finish]) -> None:
        """Write a batch with one `finish` script call per queue, all in one round trip, and
        settle each caller's future with the job's new status (None: the attempt had lost it)."""
        queues = await self._index.queues_of([op.attempt.job_id for op in batch])
        groups: dict[str, list[Finish]] = {}
        for op in batch:
            queue = queues.get(op.attempt.job_id)
            if queue is not None:
                groups.setdefault(queue, []).append(op)
            elif not op.future.done():
                op.future.set_result(None)  # no such job any more
        calls = [self._finish_call(queue, ops) for queue, ops in groups.items()]
        for ops, statuses in zip(groups.values(), await self._calls.eval_many(calls), strict=True):
            for op, status in zip(ops, statuses, strict=True):
                if not op.future.done():  # its caller may have been cancelled meanwhile
                    op.future.set_result(status or None)

    def _finish_call(self, queue: str, ops: Sequence[Finish]) -> Call:
        keys = self._keys.bound(queue, "finish").copy()
        args: list[str] = []
        for op in ops:
            job_id = op.attempt.job_id
            keys += (self._keys.job(queue, job_id), self._keys.done(queue, job_id))
            if op.kind == "complete":
                extra = ("0", "") if op.result is None else ("1", op.result)
            elif op.kind == "fail":
                retry = "" if op.seconds is None else str(micros(op.seconds))
                extra = (op.error or "", retry)
            else:
                extra = (str(micros(op.seconds or 0.0)), "")
            args += (op.kind, job_id, op.attempt.token, *extra)
        return ("finish", keys, args)

    async def expire(self) -> int:
        return await expire_queues(self._calls, self._keys, await self._index.queue_names())

    async def rescue(self) -> Rescued:
        dead = 0

        async def fail_expired(batch: list[tuple[str, list[str]]]) -> list[tuple[int, int]]:
            nonlocal dead
            calls = [
                ("rescue", self._keys.bound(q, "rescue") + self._keys.jobs_and_done(q, ids), ids)
                for q, ids in batch
            ]
            replies = await self._calls.eval_many(calls)
            counts = [(int(failed), int(died)) for failed, died in replies]
            dead += sum(died for _, died in counts)
            return [(failed + died, 0) for failed, died in counts]

        targets = [(queue, "leases") for queue in await self._index.queue_names()]
        rescued = await self._sweep(targets, 0.0, fail_expired)
        return Rescued(failed=rescued - dead, dead=dead)

    async def _sweep(
        self,
        targets: Sequence[tuple[str, str]],
        age: float,
        act: Callable[[list[tuple[str, list[str]]]], Awaitable[list[tuple[int, int]]]],
    ) -> int:
        """Act on the ids whose score (a time) in each (queue, set) is `age` seconds past,
        a batch per set at a time, all sets in one round trip; return how many were acted on.
        `act` says per batch how many it acted on and how many it left in their set on purpose
        (jobs pruning keeps): the set's next batch starts past those."""
        total = 0
        passed = dict.fromkeys(targets, 0)
        while targets:
            found = await self._calls.eval_many(
                [
                    (
                        "due",
                        self._keys.bound(q, "due"),
                        [name, str(micros(age)), str(BATCH), str(passed[q, name])],
                    )
                    for q, name in targets
                ]
            )
            batch = [(target, ids) for target, ids in zip(targets, found, strict=True) if ids]
            counts = await act([(q, ids) for (q, _), ids in batch])
            total += sum(done for done, _ in counts)
            for (target, _), (_, kept) in zip(batch, counts, strict=True):
                passed[target] += kept
            # A full batch may have more behind it; a batch where nothing happened ends it.
            targets = [
                target
                for (target, ids), (done, kept) in zip(batch, counts, strict=True)
                if len(ids) == BATCH and (done or kept)
            ]
        return total

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        """Block on the queues' signal lists (BLPOP), at most until the next scheduled job
        of these queues is due; returns at once when one is due already."""
        names = list(dict.fromkeys(queues))
        if not names:
            await anyio.sleep(timeout)
            return
        waits = [
            int(w)
            for w in await self._calls.eval_many(
                [("next", self._keys.bound(q, "next"), []) for q in names]
            )
        ]
        due = [wait for wait in waits if wait >= 0]
        if due:
            timeout = min(timeout, min(due) / 1e6)
        if timeout > 0:
            await self._calls.block(
                [self._keys.of_queue(queue, "signal") for queue in names], timeout
            )

    async def wait_for_loss(self, jobs: Sequence[Job], timeout: float) -> None:
        """Cancel scripts publish a running job's id on its queue's sharded channel, which
        this backend's one subscription (cancels.py) passes to the waiters of that id."""
        await self._cancels.wait(jobs, timeout)

    async def wait_for_outcome(self, job_id: str, timeout: float) -> Job | None:
        """Register as a waiter; the script that finishes the job pushes to its done list."""
        queue = await self._index.lookup(job_id)
        if queue is None:
            return None
        deadline = anyio.current_time() + timeout
        keys = [*self._keys.bound(queue, "watch"), self._keys.job(queue, job_id)]
        done_key = self._keys.done(queue, job_id)
        while True:
            state = await self._calls.eval("watch", keys, [job_id])
            if state[0] == "gone":
                return None
            if state[0] == "done":
                return job_from_hash(state[1])
            try:
                remaining = deadline - anyio.current_time()
                if remaining <= 0:
                    return None
                await self._calls.block([done_key], min(remaining, MAX_BLOCK_SECONDS))
            finally:
                with anyio.CancelScope(shield=True):
                    await self._calls.eval("unwatch", self._keys.bound(queue, "unwatch"), [job_id])

    # Inspecting and repairing

    async def list_queues(self) -> list[str]:
        names = await self._index.queue_names()
        sizes = await self._calls.commands(
            [("ZCARD", self._keys.of_queue(name, "all")) for name in names]
            + [("EXISTS", self._keys.of_queue(name, "paused")) for name in names]
        )
        held, paused = sizes[: len(names)], sizes[len(names) :]
        return [
            name
            for name, size, pause in zip(names, held, paused, strict=True)
            if int(size) or int(pause)
        ]

    async def pause(self, queue: str) -> None:
        # Name the queue in the {prefix} set first (as reserve.lua does for a queue with jobs),
        # so list_queues and paused_queues find it; the pause itself is one script.
        await self._calls.commands([("SADD", self._keys.queues, queue)])
        await self._calls.eval("pause", self._keys.bound(queue, "pause"), ["1"])

    async def resume(self, queue: str) -> None:
        await self._calls.eval("pause", self._keys.bound(queue, "pause"), ["0"])

    async def paused_queues(self) -> set[str]:
        names = await self._index.queue_names()
        flags = await self._calls.commands(
            [("EXISTS", self._keys.of_queue(name, "paused")) for name in names]
        )
        return {name for name, flag in zip(names, flags, strict=True) if int(flag)}

    # Flow control (limits.py, claim_limited.lua)

    async def set_limits(self, queue: str, limits: Limits | None) -> None:
        await self._flow.set_limits(queue, limits)

    async def get_limits(self) -> dict[str, Limits]:
        return await self._flow.get_limits(await self._index.queue_names())

    async def hold(self, queue: str, key: str | None, seconds: float) -> None:
        await self._flow.hold(queue, key, seconds)

    async def limit_usage(self, queue: str) -> LimitUsage:
        return await self._flow.limit_usage(queue)

    async def stats(self, queue: str) -> QueueCounts:
        reply = await self._calls.eval(
            "stats", self._keys.bound(queue, "stats"), [str(micros(SUCCESS_WINDOW_SECONDS))]
        )
        pending, scheduled, running, completed, failed, dead, cancelled = map(int, reply[:7])
        oldest, completed_recently, dead_recently, expired, waiting = reply[7:]
        return QueueCounts(
            waiting=int(waiting),
            pending=pending,
            scheduled=scheduled,
            running=running,
            completed=completed,
            failed=failed,
            dead=dead,
            cancelled=cancelled,
            oldest_ready_age=int(oldest) / 1e6 if oldest != "" else None,
            completed_recently=int(completed_recently),
            dead_recently=int(dead_recently),
            expired_leases=int(expired),
        )

    async def _on_job(self, script: str, job_id: str, *args: str) -> Job | None:
        """Run a script of one job (its queue's keys, the job and done keys; ARGV: the id,
        then `args`); the job as it then is, or None when there is no such job."""
        queue = await self._index.lookup(job_id)
        if queue is None:
            return None
        keys = [
            *self._keys.bound(queue, script),
            self._keys.job(queue, job_id),
            self._keys.done(queue, job_id),
        ]
        fields = await self._calls.eval(script, keys, [job_id, *args])
        return job_from_hash(fields, with_history=True) if fields else None

    async def cancel(self, job_id: str) -> Job | None:
        return await self._on_job("cancel", job_id)

    async def replay(self, job_id: str) -> Job | None:
        return await self._on_job("ready_now", job_id, "replay")

    async def run_now(self, job_id: str) -> Job | None:
        return await self._on_job("ready_now", job_id, "run_now")

    async def delete_job(self, job_id: str) -> bool:
        queue = await self._index.lookup(job_id)
        if queue is None:
            return False
        ((deleted, running, _),) = await self._delete([(queue, [job_id])])
        if running:
            raise JobRunningError(job_id)
        return bool(deleted)

    async def _delete(
        self, batch: Sequence[tuple[str, list[str]]], status: str = "", older_than: str = ""
    ) -> list[tuple[list[str], list[str], int]]:
        """Delete the given jobs of each queue that match; then drop them from the index.
        Per queue, the ids deleted, those left because they are running, and how many were
        left because they hold their unique key (lua/delete.lua)."""
        calls: list[Call] = []
        for q, ids in batch:
            keys = self._keys.bound(q, "delete") + self._keys.jobs_and_done(q, ids)
            calls.append(("delete", keys, [status, older_than, *ids]))
        replies = await self._calls.eval_many(calls)
        await self._index.unindex(
            (q, reply[0]) for (q, _), reply in zip(batch, replies, strict=True)
        )
        return [(list(deleted), list(running), int(held)) for deleted, running, held in replies]

    async def replay_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return (await self._batch("replay", where, after, limit))[0]

    async def cancel_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return (await self._batch("cancel", where, after, limit))[0]

    async def run_now_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return (await self._batch("run_now", where, after, limit))[0]

    async def delete_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        batch, deleted = await self._batch("delete", where, after, limit)
        await self._index.unindex(deleted)
        return batch

    async def _batch(
        self, action: str, where: JobFilter, after: int, limit: int
    ) -> tuple[Batch, list[tuple[str, list[str]]]]:
        """One `batch` script per queue, pipelined; returns the ids changed in each queue."""
        queues = [where.queue] if where.queue is not None else await self._index.queue_names()
        args = [action, str(where.status), where.type or "", str(after), str(limit)]
        replies = await self._calls.eval_many(
            [("batch", self._keys.bound(q, "batch"), args) for q in queues]
        )
        changed = [(q, list(reply[1:])) for q, reply in zip(queues, replies, strict=True)]
        # Go on after the least far any queue got; the others look again at the jobs they
        # passed over (of another type, or replays a live job's unique key holds back).
        more = [int(reply[0]) for reply in replies if reply[0] != ""]
        count = sum(len(ids) for _, ids in changed)
        return Batch(count, min(more) if more else None), changed

    async def prune(self, older_than: float, statuses: Sequence[JobStatus]) -> int:
        pruned = 0
        queues = await self._index.queue_names()
        for status in dict.fromkeys(statuses):

            async def delete(
                batch: list[tuple[str, list[str]]], status: str = status
            ) -> list[tuple[int, int]]:
                deleted = await self._delete(batch, status, str(micros(older_than)))
                return [(len(ids), held) for ids, _, held in deleted]

            targets = [(queue, f"finished:{status}") for queue in queues]
            pruned += await self._sweep(targets, older_than, delete)
        return pruned


def _progress_args(update: ProgressUpdate) -> list[str]:
    """An attempt's report as heartbeat.lua reads it: progress, note, output ('' = none)."""
    fraction = "" if update.fraction is None else repr(update.fraction)
    return [fraction, update.note or "", update.output_json or ""]

"""`RedisBackend`: jobs in Redis (or a Redis Cluster), every state change one Lua script.

Layout (see docs/redis.md): each queue's keys share the hash tag `{<prefix>:<queue>}`, so a
queue lives in one Cluster slot and every script works inside one slot, with every key it
touches passed in KEYS. A small `{<prefix>}` slot holds what spans queues: the id -> queue
index, the set of queue names and the sequence counter that orders jobs across queues. (On a
single server, where slots do not matter, enqueue uses both in one script.)
Time is Redis's own (`TIME` inside the scripts), never the client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Protocol, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
from redis import exceptions as rx
from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..backend import Backend
from ..errors import BackendUnavailableError, InvalidOptionError, InvalidURLError
from ..job import Attempt, Job, JobPage, JobStatus, NewJob
from ..stats import SUCCESS_WINDOW_SECONDS, QueueCounts
from ..validation import check_identifier
from .batching import BatchedFinishes, Finish, FinishBatcher
from .rows import job_from_row

log = logging.getLogger(__name__)

Client: TypeAlias = "Redis | RedisCluster"
Call: TypeAlias = tuple[str, list[str], list[str]]
"""One script call: script name, KEYS, ARGV."""

DEFAULT_PREFIX = "queuekit"
SCRIPTS = (
    "enqueue",
    "peek",
    "claim",
    "heartbeat",
    "finish",
    "rescue",
    "cancel",
    "replay",
    "delete",
    "watch",
    "unwatch",
    "due",
    "next",
    "stats",
    "reserve",
    "reserve_enqueue",
    "peek_claim",
    "unindex",
    "pause",
)
BIND_KEYS = re.compile(r"^\s*bind_keys(?:\(([^)]*)\)|_at\([^,]+, (\w+)\))", re.MULTILINE)
"""A script's `bind_keys('a', ...)`, or `bind_keys_at(at, NAMES)` with a list from `_lib.lua`
(per queue, for the scripts that take several queues)."""
URL_OPTIONS = ("queuekit_prefix", "queuekit_cluster")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
ROW_FIELDS = (
    "id",
    "queue",
    "type",
    "payload",
    "priority",
    "status",
    "attempts",
    "max_attempts",
    "created_at",
    "scheduled_at",
    "started_at",
    "finished_at",
    "lease_expires_at",
    "worker_id",
    "last_error",
    "unique_key",
    "result",
    "headers",
)
MEMBER_ID_OFFSET = 20
"""Ready and scheduled members are `<priority:4 digits><seq:16 digits><id>`."""
BATCH = 500
"""Jobs per script call when deleting, pruning or rescuing in bulk."""
MAX_CLAIM_ROUNDS = 20
MAX_BLOCK_SECONDS = 60.0
"""Longest single blocking pop; waits longer than this wake up and look again."""
BLOCK_GRACE_SECONDS = 5.0
"""How long past its own timeout a blocking pop may take before the server counts as gone."""
CACHE_LIMIT = 100_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNAVAILABLE = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.ClusterDownError,
    rx.SlotNotCoveredError,
    rx.TryAgainError,
    OSError,
)


@cache
def _lua(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")


def script_prelude(strict_keys: bool = False) -> str:
    """What precedes every script: how it calls Redis (checked or not), and the library."""
    return _lua("_call_strict" if strict_keys else "_call") + _lua("_lib")


@cache
def script_keys() -> dict[str, tuple[str, ...]]:
    """The queue keys each per-queue script binds (its `bind_keys(...)`), in KEYS order."""
    found: dict[str, tuple[str, ...]] = {}
    for name in SCRIPTS:
        match = BIND_KEYS.search(_lua(name))
        if match is not None:
            names = match.group(1)
            if names is None:  # a list the library defines: local NAMES = { ... }
                listed = re.search(rf"^local {match.group(2)} = {{([^}}]*)}}", _lua("_lib"), re.M)
                assert listed is not None, f"{name}.lua binds an unknown list"
                names = listed.group(1)
            found[name] = tuple(re.findall(r"'([^']+)'", names))
    return found


@cache
def script_sources(strict_keys: bool = False) -> dict[str, str]:
    """Each script's full source: the prelude, then its body."""
    prelude = script_prelude(strict_keys)
    return {name: f"{prelude}\n{_lua(name)}" for name in SCRIPTS}


class ScriptObserver(Protocol):
    """Sees every script call before it is sent (the tests check the keys' slots)."""

    def __call__(self, name: str, keys: Sequence[str]) -> None: ...


class RedisBackend(BatchedFinishes, Backend):
    """Jobs in Redis through `redis.asyncio`: a plain server or a Cluster.

    Build it from a URL (`redis://`, `rediss://`; `?queuekit_prefix=name` sets the key
    prefix, `?queuekit_cluster=true` talks to a Cluster) or around an existing client
    (`RedisBackend(client=...)`, a `Redis` or a `RedisCluster`), which it does not close.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Client | None = None,
        prefix: str | None = None,
        strict_keys: bool = False,
    ) -> None:
        if (url is None) == (client is None):
            raise InvalidOptionError("RedisBackend takes a URL or a client, not both or neither")
        self.url = url
        self._redis_url: str | None = None
        self._cluster = isinstance(client, RedisCluster)
        if url is not None:
            self._redis_url, url_prefix, self._cluster = _parse_url(url)
            prefix = url_prefix if prefix is None else prefix
        self.prefix = check_identifier(
            DEFAULT_PREFIX if prefix is None else prefix, "Redis key prefix"
        )
        self._given = client
        self._client: Client | None = None
        self._blocking: Client | None = None
        self._block_cap: float | None = None
        self._decoded = True
        """Whether the client decodes replies itself (else `_text` does)."""
        self._sources = script_sources(strict_keys)
        self._shas = {
            name: hashlib.sha1(source.encode()).hexdigest()
            for name, source in self._sources.items()
        }
        self._queue_keys: dict[tuple[str, str], list[str]] = {}
        self._script_keys = script_keys()
        self._queue_cache: dict[str, str] = {}
        self._batcher = FinishBatcher(self._write_finishes, window=0.0, max_size=BATCH)
        self.script_observer: ScriptObserver | None = None
        self._cross_slot = not self._cluster
        """Whether one script may use keys of several slots (enqueue, claim): not on a
        Cluster, nor behind a proxy that shards."""
        tag = "{" + self.prefix + "}"
        self._index, self._queues, self._seq = f"{tag}:index", f"{tag}:queues", f"{tag}:seq"

    @classmethod
    def from_url(cls, url: str) -> RedisBackend:
        return cls(url)

    # Connecting

    async def open(self) -> None:
        if self._client is not None:
            return
        if self._batcher.closed:
            self._batcher = FinishBatcher(self._write_finishes, window=0.0, max_size=BATCH)
        self._client, self._blocking, self._block_cap = self._connect()
        self._decoded = bool(self._client.get_encoder().decode_responses)
        try:
            with self._errors():
                if isinstance(self._client, RedisCluster):
                    await self._client.initialize()
                await self._client.ping()
            await self._warn_about_eviction()
            await self._load_scripts()
        except BaseException:
            await self.close()
            raise

    def _connect(self) -> tuple[Client, Client, float | None]:
        """The shared client, and one for blocking pops that must not share its timeout."""
        if self._given is None:
            assert self._redis_url is not None
            options: dict[str, Any] = {"decode_responses": True, "retry": Retry(NoBackoff(), 0)}
            if self._cluster:
                # Each blocking wait holds a connection to its node for the whole wait.
                return (
                    RedisCluster.from_url(self._redis_url, **options),
                    RedisCluster.from_url(
                        self._redis_url, **options, socket_timeout=None, max_connections=2**16
                    ),
                    None,
                )
            return (
                Redis.from_url(self._redis_url, **options),
                Redis.from_url(self._redis_url, **options, socket_timeout=None),
                None,
            )
        if isinstance(self._given, RedisCluster):
            # A cluster client cannot be copied faithfully; share it and keep each pop
            # shorter than its socket timeout.
            timeout = self._given.get_connection_kwargs().get("socket_timeout")
            return self._given, self._given, None if timeout is None else 0.8 * float(timeout)
        pool = self._given.connection_pool
        kwargs = {**pool.connection_kwargs, "socket_timeout": None}
        blocking = Redis(connection_pool=ConnectionPool(pool.connection_class, **kwargs))
        return self._given, blocking, None

    async def close(self) -> None:
        await self._batcher.close()
        client, blocking = self._client, self._blocking
        self._client = self._blocking = None
        for owned in {id(c): c for c in (client, blocking) if c is not None}.values():
            if owned is self._given:
                continue
            with contextlib.suppress(Exception):
                if isinstance(owned, Redis):
                    await owned.aclose(close_connection_pool=True)
                else:
                    await owned.aclose()

    async def _warn_about_eviction(self) -> None:
        """Warn when Redis may evict keys under memory pressure, jobs included."""
        try:
            reply = await self._require().config_get("maxmemory-policy")
        except (rx.ResponseError, *UNAVAILABLE):
            return  # CONFIG may be disabled or forbidden (managed Redis); nothing to check
        policies = {str(policy) for policy in _find_values(_text(reply), "maxmemory-policy")}
        evicting = sorted(policy for policy in policies if policy.startswith("allkeys-"))
        if evicting:
            log.warning(
                "Redis maxmemory-policy is %s: under memory pressure Redis may evict job keys "
                "and lose jobs; set maxmemory-policy noeviction (see docs/redis.md)",
                ", ".join(evicting),
            )

    async def _load_scripts(self, names: Sequence[str] = SCRIPTS) -> None:
        """SCRIPT LOAD (on every primary of a Cluster), so calls can go by SHA."""
        client = self._require()
        with self._errors():
            if isinstance(client, RedisCluster):  # each SCRIPT LOAD goes to every primary
                shas = [await client.script_load(self._sources[name]) for name in names]
            else:
                pipe = client.pipeline(transaction=False)
                for name in names:
                    pipe.script_load(self._sources[name])
                shas = await pipe.execute()
        for name, sha in zip(names, shas, strict=True):
            if _text(sha) != self._shas[name]:
                raise RuntimeError(f"Redis returned SHA {sha!r} for script {name}")

    def _require(self) -> Client:
        if self._client is None:
            raise BackendUnavailableError("the Redis backend is not open")
        return self._client

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except UNAVAILABLE as exc:
            raise BackendUnavailableError(f"Redis is unavailable: {exc}") from exc
        except rx.RedisClusterException as exc:
            raise BackendUnavailableError(f"Redis Cluster is unavailable: {exc}") from exc

    # Keys

    def _key(self, queue: str, name: str) -> str:
        return "{" + self.prefix + ":" + queue + "}:" + name

    def _qkeys(self, queue: str, script: str) -> list[str]:
        """The keys of `queue` that `script` binds, in its order."""
        keys = self._queue_keys.get((queue, script))
        if keys is None:
            names = self._script_keys[script]
            keys = self._queue_keys[queue, script] = [self._key(queue, name) for name in names]
        return keys

    def _job_key(self, queue: str, job_id: str) -> str:
        return self._key(queue, "job:" + job_id)

    def _done_key(self, queue: str, job_id: str) -> str:
        return self._key(queue, "done:" + job_id)

    # Running scripts and commands

    async def _eval(self, name: str, keys: list[str], args: list[str]) -> Any:
        return (await self._eval_many([(name, keys, args)]))[0]

    async def _eval_many(self, calls: Sequence[Call]) -> list[Any]:
        """Run script calls by SHA in one round trip.

        After a restart or SCRIPT FLUSH, Redis answers NOSCRIPT (and ran nothing): those calls
        are sent again with their source (EVAL, which no flush can race), then the scripts are
        loaded again so later calls go by SHA.
        """
        if not calls:
            return []
        if self.script_observer is not None:
            for name, keys, _ in calls:
                self.script_observer(name, keys)
        with self._errors():
            results = await self._send_evals(calls, by_sha=True)
            missing = [
                i for i, result in enumerate(results) if isinstance(result, rx.NoScriptError)
            ]
            if missing:
                again = await self._send_evals([calls[i] for i in missing], by_sha=False)
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
                await self._load_scripts(sorted({calls[i][0] for i in missing}))
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return results if self._decoded else [_text(result) for result in results]

    async def _send_evals(self, calls: Sequence[Call], *, by_sha: bool) -> list[Any]:
        client = self._require()
        commands = [
            ("EVALSHA", self._shas[name]) if by_sha else ("EVAL", self._sources[name])
            for name, _, _ in calls
        ]
        if len(calls) == 1:
            (_, keys, args), command = calls[0], commands[0]
            try:
                return [await client.execute_command(*command, len(keys), *keys, *args)]
            except rx.NoScriptError as exc:
                return [exc]
        pipe = client.pipeline(transaction=False)
        for (_, keys, args), command in zip(calls, commands, strict=True):
            pipe.execute_command(*command, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))

    async def _commands(self, commands: Sequence[Sequence[str]]) -> list[Any]:
        """Plain commands in one round trip: reads across slots, and idempotent index repairs."""
        if not commands:
            return []
        client = self._require()
        with self._errors():
            if len(commands) == 1:
                results = [await client.execute_command(*commands[0])]
            else:
                pipe = client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                results = list(await pipe.execute(raise_on_error=False))
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return results if self._decoded else [_text(result) for result in results]

    # The {prefix} slot: which queue holds a job, which queues exist

    async def _queue_names(self) -> list[str]:
        names = (await self._commands([("SMEMBERS", self._queues)]))[0]
        return sorted(names)

    async def _lookup(self, job_id: str) -> str | None:
        return (await self._queues_of([job_id])).get(job_id)

    async def _queues_of(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Each job's queue: from the jobs this client claimed, else from the index."""
        found = {job_id: queue for job_id in job_ids if (queue := self._queue_cache.get(job_id))}
        unknown = sorted(set(job_ids) - found.keys())
        if unknown:
            queues = (await self._commands([("HMGET", self._index, *unknown)]))[0]
            found.update((job_id, q) for job_id, q in zip(unknown, queues, strict=True) if q)
            missing = [job_id for job_id in unknown if job_id not in found]
            if missing:
                found.update(await self._search_queues(missing))
        return found

    async def _search_queues(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Find jobs missing from the index in every queue, and index them again.

        Two enqueues racing with one explicit id can leave the job stored but unindexed: the
        loser gives back an index entry the winner's job now uses. This finds such jobs.
        """
        names = await self._queue_names()
        probes = [(job_id, queue) for job_id in job_ids for queue in names]
        exists = await self._commands(
            [("EXISTS", self._job_key(queue, job_id)) for job_id, queue in probes]
        )
        found = {job_id: queue for (job_id, queue), hit in zip(probes, exists, strict=True) if hit}
        if found:
            await self._commands(
                [("HSETNX", self._index, job_id, q) for job_id, q in found.items()]
            )
        return found

    def _remember(self, job: Job) -> None:
        if len(self._queue_cache) >= CACHE_LIMIT:
            self._queue_cache.clear()
        self._queue_cache[job.id] = job.queue

    async def _unindex(self, entries: Iterable[tuple[str, Sequence[str]]]) -> None:
        """Drop (queue, ids) from the index where the ids still point at that queue."""
        await self._eval_many(
            [("unindex", [self._index], [queue, *ids]) for queue, ids in entries if ids]
        )

    # Producing

    async def enqueue(self, job: NewJob) -> Job:
        return (await self.enqueue_many([job]))[0]

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        """One script call on a single server; on a Cluster (or when an id is indexed under
        another queue) two round trips: the reservation, then the jobs of each queue."""
        if not jobs:
            return []
        ids = [job.id for job in jobs]
        if len(set(ids)) < len(ids):
            raise InvalidOptionError("enqueue_many got two jobs with the same id")
        by_queue: dict[str, list[int]] = {}
        for i, job in enumerate(jobs):
            by_queue.setdefault(job.queue, []).append(i)
        if self._cross_slot:
            stored = await self._enqueue_at_once(jobs, by_queue)
            if stored is not None:
                return stored
        return await self._enqueue_in_two_steps(jobs, by_queue)

    async def _eval_cross_slot(self, name: str, keys: list[str], args: list[str]) -> Any:
        """Run a script whose keys may span slots; ['fallback'] when the server refuses that."""
        try:
            return await self._eval(name, keys, args)
        except rx.ResponseError as exc:
            if "CROSSSLOT" not in str(exc):
                raise
            # A proxy that shards behind one address refuses keys of several slots (having
            # run nothing): use the one-slot scripts from now on.
            self._cross_slot = False
            return ["fallback"]

    async def _enqueue_at_once(
        self, jobs: Sequence[NewJob], by_queue: dict[str, list[int]]
    ) -> list[Job] | None:
        """Reserve and store in one script (a single server lets one script span slots), all
        or nothing; None, having written nothing, when an id is indexed under another queue,
        whose job only the two-step path can look for."""
        keys = [self._index, self._queues, self._seq]
        args = [str(len(jobs)), str(len(by_queue))]
        for queue, members in by_queue.items():
            keys += self._qkeys(queue, "reserve_enqueue")
            keys += [self._job_key(queue, jobs[i].id) for i in members]
            args += [queue, str(len(members))]
            for i in members:
                args += _enqueue_args(jobs[i], i, False)  # seq: the offset from the first
        result = await self._eval_cross_slot("reserve_enqueue", keys, args)
        if result[0] == "fallback":
            return None
        if result[0] == "exists":
            raise InvalidOptionError(f"a job with id {result[1]!r} already exists")
        outcomes = iter(result[2:])
        parts = [(members, result[1], outcomes) for members in by_queue.values()]
        # Nothing was reserved for a duplicate, so nothing is given back.
        return await self._stored(jobs, parts, set())

    async def _enqueue_in_two_steps(
        self, jobs: Sequence[NewJob], by_queue: dict[str, list[int]]
    ) -> list[Job]:
        """Reserve the ids and seqs in the `{prefix}` slot, then store each queue's jobs with
        one script call per queue, pipelined: two round trips for any number of jobs."""
        first_seq, owners = await self._reserve(
            [(job.id, job.queue, "") for job in jobs], len(jobs)
        )
        reserved = {i for i, owner in enumerate(owners) if owner == ""}
        taken = await self._taken(jobs, owners, reserved)
        refused = [jobs[i].id for i in sorted(taken) if jobs[i].unique_key is None]
        if refused:
            await self._release(jobs, reserved)
            raise InvalidOptionError(f"a job with id {refused[0]!r} already exists")

        calls: list[Call] = []
        for queue, members in by_queue.items():
            args = [queue, str(len(members))]
            for i in members:
                args += _enqueue_args(jobs[i], first_seq + i, i in taken)
            keys = self._qkeys(queue, "enqueue") + [
                self._job_key(queue, jobs[i].id) for i in members
            ]
            calls.append(("enqueue", keys, args))
        results = await self._eval_many(calls)

        failed = [
            (queue, result[1])
            for (queue, _), result in zip(by_queue.items(), results, strict=True)
            if result[0] == "exists"
        ]
        if failed:
            failed_queues = {queue for queue, _ in failed}
            await self._release(jobs, {i for i in reserved if jobs[i].queue in failed_queues})
            raise InvalidOptionError(f"a job with id {failed[0][1]!r} already exists")
        parts = [
            (members, result[1], iter(result[2:]))
            for members, result in zip(by_queue.values(), results, strict=True)
        ]
        return await self._stored(jobs, parts, reserved)

    async def _stored(
        self,
        jobs: Sequence[NewJob],
        parts: Iterable[tuple[list[int], str, Iterator[str]]],
        reserved: set[int],
    ) -> list[Job]:
        """The jobs an enqueue stored or found: per queue its positions in `jobs`, its
        created_at and one outcome per job ('+<scheduled_at>' or '=<holder of the key>')."""
        stored: list[Job | None] = [None] * len(jobs)
        duplicates: dict[int, str] = {}
        for members, created_at, outcomes in parts:
            for i in members:
                outcome = next(outcomes)
                if outcome[0] == "+":
                    stored[i] = _new_job(jobs[i], created_at, outcome[1:])
                else:
                    duplicates[i] = outcome[1:]
        if duplicates:
            await self._resolve_duplicates(jobs, stored, duplicates, reserved)
        assert all(job is not None for job in stored)
        return [job for job in stored if job is not None]

    async def _reserve(
        self, entries: Sequence[tuple[str, str, str]], seqs: int
    ) -> tuple[int, list[str]]:
        args = [str(seqs)] + [part for entry in entries for part in entry]
        reply = await self._eval("reserve", [self._index, self._queues, self._seq], args)
        return int(reply[0]), list(reply[1:])

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
        exists = await self._commands(
            [("EXISTS", self._job_key(owners[i], jobs[i].id)) for i in foreign]
        )
        taken = {i for i, found in zip(foreign, exists, strict=True) if found}
        stale = [i for i in foreign if i not in taken]
        if stale:
            _, again = await self._reserve(
                [(jobs[i].id, jobs[i].queue, owners[i]) for i in stale], 0
            )
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
        await self._unindex(by_queue.items())

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
        fetched = await self._commands(
            [("HGETALL", self._job_key(jobs[i].queue, duplicates[i])) for i in outside]
        )
        found = {i: _job(fields) for i, fields in zip(outside, fetched, strict=True) if fields}
        retry = [i for i in outside if i not in found]
        for i, holder in duplicates.items():
            stored[i] = in_batch.get(holder) or found.get(i)
        await self._release(jobs, {i for i in duplicates if i in reserved and i not in retry})
        for i in retry:
            # The holder finished and was deleted meanwhile: the key is free again.
            stored[i] = (await self.enqueue_many([jobs[i]]))[0]

    # Consuming

    async def claim(
        self, slots: Mapping[str, int], *, limit: int, lease: float, worker_id: str
    ) -> list[Job]:
        """Peek at the ready heads of every queue, pick the best `limit` across queues, then
        claim them with one script per queue (pipelined); the script skips any job another
        claimer took first and takes the next of the queue's heads instead."""
        free = {queue: min(count, limit) for queue, count in slots.items() if count > 0}
        left = limit
        lease_us = str(_micros(lease))
        if self._cross_slot and free and limit > 0:
            jobs = await self._claim_at_once(free, limit, lease_us, worker_id)
            if jobs is not None:
                return jobs
        claimed: list[tuple[float, str, Job]] = []
        for attempt in range(MAX_CLAIM_ROUNDS):
            if left <= 0 or not free:
                break
            heads = await self._peek({queue: 2 * min(n, left) for queue, n in free.items()})
            scores = {member: score for items in heads.values() for member, score in items}
            picks: dict[str, int] = {}
            picked = 0
            ranked = sorted((score, m, q) for q, items in heads.items() for m, score in items)
            for *_, queue in ranked:
                if picked >= left:
                    break
                if picks.get(queue, 0) < free[queue]:
                    picks[queue] = picks.get(queue, 0) + 1
                    picked += 1
            if not picks:
                break
            calls: list[Call] = []
            for queue, want in picks.items():
                members = [member for member, _ in heads[queue]]
                job_prefix = self._job_key(queue, "")
                keys = self._qkeys(queue, "claim") + [
                    job_prefix + member[MEMBER_ID_OFFSET:] for member in members
                ]
                calls.append(("claim", keys, [str(want), lease_us, worker_id, *members]))
            got = 0
            for queue, result in zip(picks, await self._eval_many(calls), strict=True):
                for member, fields in result:
                    job = _job(fields)
                    self._remember(job)
                    claimed.append((scores[member], member, job))
                    free[queue] -= 1
                    got += 1
            left -= got
            free = {queue: n for queue, n in free.items() if n > 0}
            if got == picked or (claimed and attempt >= 2):
                break  # got what the heads offered, or enough despite other claimers
        claimed.sort(key=lambda entry: entry[:2])
        return [job for _, _, job in claimed]

    async def _claim_at_once(
        self, free: Mapping[str, int], limit: int, lease_us: str, worker_id: str
    ) -> list[Job] | None:
        """Peek and claim in one script (a single server lets it span the queues' slots);
        None when a queue has more due jobs to promote than one call does."""
        keys = [key for queue in free for key in self._qkeys(queue, "peek_claim")]
        args = [str(limit), lease_us, worker_id, *map(str, free.values())]
        result = await self._eval_cross_slot("peek_claim", keys, args)
        if result[0] == "fallback":
            return None
        jobs = [_job(fields) for _, fields in result[1:]]
        for job in jobs:
            self._remember(job)
        return jobs

    async def _peek(self, counts: Mapping[str, int]) -> dict[str, list[tuple[str, float]]]:
        """Promote due jobs and read each queue's ready heads as (member, score)."""
        heads: dict[str, list[tuple[str, float]]] = {}
        todo = dict(counts)
        while todo:
            replies = await self._eval_many(
                [("peek", self._qkeys(queue, "peek"), [str(n)]) for queue, n in todo.items()]
            )
            again: dict[str, int] = {}
            for (queue, n), (more, flat) in zip(todo.items(), replies, strict=True):
                heads[queue] = [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]
                if int(more):
                    again[queue] = n
            todo = again
        return heads

    async def heartbeat(self, attempts: Sequence[Attempt], *, lease: float) -> set[Attempt]:
        queues = await self._queues_of([attempt.job_id for attempt in attempts])
        lost = {attempt for attempt in attempts if attempt.job_id not in queues}
        groups: dict[str, list[Attempt]] = {}
        for attempt in attempts:
            if attempt.job_id in queues:
                groups.setdefault(queues[attempt.job_id], []).append(attempt)
        calls: list[Call] = []
        for queue, group in groups.items():
            keys = self._qkeys(queue, "heartbeat") + [self._job_key(queue, a.job_id) for a in group]
            args = [str(_micros(lease))]
            for attempt in group:
                args += [attempt.job_id, str(attempt.number)]
            calls.append(("heartbeat", keys, args))
        for group, positions in zip(groups.values(), await self._eval_many(calls), strict=True):
            lost.update(group[position - 1] for position in positions)
        return lost

    async def _write_finishes(self, batch: list[Finish]) -> None:
        """Write a batch with one `finish` script call per queue, all in one round trip, and
        settle each caller's future with the job's new status (None: the attempt had lost it)."""
        queues = await self._queues_of([op.attempt.job_id for op in batch])
        groups: dict[str, list[Finish]] = {}
        for op in batch:
            queue = queues.get(op.attempt.job_id)
            if queue is not None:
                groups.setdefault(queue, []).append(op)
            elif not op.future.done():
                op.future.set_result(None)  # no such job any more
        calls = [self._finish_call(queue, ops) for queue, ops in groups.items()]
        for ops, statuses in zip(groups.values(), await self._eval_many(calls), strict=True):
            for op, status in zip(ops, statuses, strict=True):
                if not op.future.done():  # its caller may have been cancelled meanwhile
                    op.future.set_result(status or None)

    def _finish_call(self, queue: str, ops: Sequence[Finish]) -> Call:
        keys = self._qkeys(queue, "finish").copy()
        args: list[str] = []
        for op in ops:
            job_id = op.attempt.job_id
            keys += (self._job_key(queue, job_id), self._done_key(queue, job_id))
            if op.kind == "complete":
                extra = ("0", "") if op.result is None else ("1", op.result)
            elif op.kind == "fail":
                retry = "" if op.seconds is None else str(_micros(op.seconds))
                extra = (op.error or "", retry)
            else:
                extra = (str(_micros(op.seconds or 0.0)), "")
            args += (op.kind, job_id, str(op.attempt.number), *extra)
        return ("finish", keys, args)

    async def rescue(self) -> int:
        async def fail_expired(batch: list[tuple[str, list[str]]]) -> list[int]:
            calls = [
                ("rescue", self._qkeys(q, "rescue") + self._job_and_done_keys(q, ids), ids)
                for q, ids in batch
            ]
            return [int(count) for count in await self._eval_many(calls)]

        targets = [(queue, "leases") for queue in await self._queue_names()]
        return await self._sweep(targets, 0.0, fail_expired)

    async def _sweep(
        self,
        targets: Sequence[tuple[str, str]],
        age: float,
        act: Callable[[list[tuple[str, list[str]]]], Awaitable[list[int]]],
    ) -> int:
        """Act on the ids whose score (a time) in each (queue, set) is `age` seconds past,
        a batch per set at a time, all sets in one round trip; return how many were acted on."""
        total = 0
        while targets:
            found = await self._eval_many(
                [
                    ("due", self._qkeys(q, "due"), [name, str(_micros(age)), str(BATCH)])
                    for q, name in targets
                ]
            )
            batch = [(target, ids) for target, ids in zip(targets, found, strict=True) if ids]
            counts = await act([(q, ids) for (q, _), ids in batch])
            total += sum(counts)
            # A full batch may have more behind it; a batch where nothing happened ends it.
            targets = [
                target
                for (target, ids), count in zip(batch, counts, strict=True)
                if len(ids) == BATCH and count
            ]
        return total

    def _job_and_done_keys(self, queue: str, job_ids: Sequence[str]) -> list[str]:
        keys: list[str] = []
        for job_id in job_ids:
            keys += [self._job_key(queue, job_id), self._done_key(queue, job_id)]
        return keys

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        """Block on the queues' signal lists (BLPOP), at most until the next scheduled job
        of these queues is due; returns at once when one is due already."""
        names = list(dict.fromkeys(queues))
        if not names:
            await anyio.sleep(timeout)
            return
        waits = [
            int(w)
            for w in await self._eval_many([("next", self._qkeys(q, "next"), []) for q in names])
        ]
        due = [wait for wait in waits if wait >= 0]
        if due:
            timeout = min(timeout, min(due) / 1e6)
        if timeout > 0:
            await self._block([self._key(queue, "signal") for queue in names], timeout)

    async def wait_for_outcome(self, job_id: str, timeout: float) -> Job | None:
        """Register as a waiter; the script that finishes the job pushes to its done list."""
        queue = await self._lookup(job_id)
        if queue is None:
            return None
        deadline = anyio.current_time() + timeout
        keys = [*self._qkeys(queue, "watch"), self._job_key(queue, job_id)]
        done_key = self._done_key(queue, job_id)
        while True:
            state = await self._eval("watch", keys, [job_id])
            if state[0] == "gone":
                return None
            if state[0] == "done":
                return _job(state[1])
            try:
                remaining = deadline - anyio.current_time()
                if remaining <= 0:
                    return None
                await self._block([done_key], min(remaining, MAX_BLOCK_SECONDS))
            finally:
                with anyio.CancelScope(shield=True):
                    await self._eval("unwatch", self._qkeys(queue, "unwatch"), [job_id])

    async def _block(self, keys: list[str], seconds: float) -> None:
        """BLPOP on a connection of its own; a Cluster pops each key (slot) separately."""
        client = self._blocking
        if client is None:
            raise BackendUnavailableError("the Redis backend is not open")
        seconds = min(seconds, MAX_BLOCK_SECONDS, self._block_cap or math.inf)
        wait = math.ceil(seconds * 1000) / 1000  # BLPOP's 0 would mean for ever
        with self._errors(), anyio.move_on_after(wait + BLOCK_GRACE_SECONDS) as scope:
            if len(keys) == 1 or not self._cluster:
                await client.blpop(keys, timeout=wait)
            else:
                pops = [asyncio.ensure_future(client.blpop([key], timeout=wait)) for key in keys]
                try:
                    done, _ = await asyncio.wait(pops, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for pop in pops:
                        pop.cancel()
                    await asyncio.gather(*pops, return_exceptions=True)
                for pop in done:
                    pop.result()
        if scope.cancelled_caught:
            raise BackendUnavailableError("Redis did not answer a blocking pop in time")

    # Inspecting and repairing

    async def get_job(self, job_id: str) -> Job | None:
        queue = await self._lookup(job_id)
        if queue is None:
            return None
        fields = (await self._commands([("HGETALL", self._job_key(queue, job_id))]))[0]
        return _job(fields) if fields else None

    async def list_jobs(
        self,
        *,
        queue: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        """Newest first by seq: each queue's `all` or `status:<s>` set, merged across queues."""
        queues = [queue] if queue is not None else await self._queue_names()
        which = "all" if status is None else f"status:{status}"
        top = "+inf" if cursor is None else f"({int(cursor)}"
        window = ("WITHSCORES", "LIMIT", "0", str(limit + 1))
        ranges = await self._commands(
            [("ZREVRANGEBYSCORE", self._key(q, which), top, "-inf", *window) for q in queues]
        )
        entries = sorted(
            (
                (int(score), q, job_id)
                for q, reply in zip(queues, ranges, strict=True)
                for job_id, score in _scored(reply)
            ),
            reverse=True,
        )[: limit + 1]
        page = entries[:limit]
        rows = await self._commands(
            [("HGETALL", self._job_key(q, job_id)) for _, q, job_id in page]
        )
        jobs = [
            job
            for job in (_job(fields) for fields in rows if fields)
            if status is None or job.status == status
        ]
        next_cursor = str(page[-1][0]) if len(entries) > limit else None
        return JobPage(jobs, next_cursor)

    async def list_queues(self) -> list[str]:
        names = await self._queue_names()
        sizes = await self._commands(
            [("ZCARD", self._key(name, "all")) for name in names]
            + [("EXISTS", self._key(name, "paused")) for name in names]
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
        await self._commands([("SADD", self._queues, queue)])
        await self._eval("pause", self._qkeys(queue, "pause"), ["1"])

    async def resume(self, queue: str) -> None:
        await self._eval("pause", self._qkeys(queue, "pause"), ["0"])

    async def paused_queues(self) -> set[str]:
        names = await self._queue_names()
        flags = await self._commands([("EXISTS", self._key(name, "paused")) for name in names])
        return {name for name, flag in zip(names, flags, strict=True) if int(flag)}

    async def stats(self, queue: str) -> QueueCounts:
        reply = await self._eval(
            "stats", self._qkeys(queue, "stats"), [str(_micros(SUCCESS_WINDOW_SECONDS))]
        )
        pending, scheduled, running, completed, failed, dead, cancelled = map(int, reply[:7])
        oldest, completed_recently, dead_recently, expired = reply[7:]
        return QueueCounts(
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

    async def _on_job(self, name: str, job_id: str) -> Any:
        queue = await self._lookup(job_id)
        if queue is None:
            return None
        keys = [
            *self._qkeys(queue, name),
            self._job_key(queue, job_id),
            self._done_key(queue, job_id),
        ]
        return await self._eval(name, keys, [job_id])

    async def cancel(self, job_id: str) -> Job | None:
        fields = await self._on_job("cancel", job_id)
        return _job(fields) if fields else None

    async def replay(self, job_id: str) -> Job | None:
        fields = await self._on_job("replay", job_id)
        return _job(fields) if fields else None

    async def delete_job(self, job_id: str) -> bool:
        queue = await self._lookup(job_id)
        if queue is None:
            return False
        return await self._delete([(queue, [job_id])]) == [1]

    async def _delete(
        self, batch: Sequence[tuple[str, list[str]]], status: str = "", older_than: str = ""
    ) -> list[int]:
        """Delete the given jobs of each queue that match; then drop them from the index."""
        calls: list[Call] = []
        for q, ids in batch:
            keys = self._qkeys(q, "delete") + self._job_and_done_keys(q, ids)
            calls.append(("delete", keys, [status, older_than, *ids]))
        deleted = await self._eval_many(calls)
        await self._unindex((q, ids) for (q, _), ids in zip(batch, deleted, strict=True))
        return [len(ids) for ids in deleted]

    async def purge(self, queue: str, status: JobStatus) -> int:
        if status == JobStatus.RUNNING:
            return 0
        purged = 0
        key = self._key(queue, f"status:{status}")
        while job_ids := (await self._commands([("ZRANGE", key, "0", str(BATCH - 1))]))[0]:
            (deleted,) = await self._delete([(queue, job_ids)], str(status))
            purged += deleted
            if not deleted:
                break
        return purged

    async def prune(self, older_than: float, statuses: Sequence[JobStatus]) -> int:
        pruned = 0
        queues = await self._queue_names()
        for status in dict.fromkeys(statuses):

            async def delete(batch: list[tuple[str, list[str]]], status: str = status) -> list[int]:
                return await self._delete(batch, status, str(_micros(older_than)))

            targets = [(queue, f"finished:{status}") for queue in queues]
            pruned += await self._sweep(targets, older_than, delete)
        return pruned


def _parse_url(url: str) -> tuple[str, str | None, bool]:
    """Split a queuekit Redis URL into the URL for redis-py, the key prefix and cluster mode."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError as exc:
        raise InvalidURLError(f"malformed Redis URL {url!r}: {exc}") from None
    if parts.scheme.lower() not in ("redis", "rediss"):
        raise InvalidURLError(f"not a Redis URL: {url!r}; use redis:// or rediss://")
    ours = {name: value for name, value in query if name.startswith("queuekit_")}
    unknown = sorted(set(ours) - set(URL_OPTIONS))
    if unknown:
        known = ", ".join(URL_OPTIONS)
        raise InvalidURLError(f"unknown option {unknown[0]!r} in Redis URL; queuekit knows {known}")
    cluster_flag = ours.get("queuekit_cluster", "").lower()
    if cluster_flag not in TRUE + FALSE:
        raise InvalidURLError(f"queuekit_cluster must be true or false, not {cluster_flag!r}")
    database = parts.path.lstrip("/")
    if database and not database.isdecimal():
        raise InvalidURLError(f"bad Redis URL {url!r}: the path must be a database number")
    rest = [(name, value) for name, value in query if not name.startswith("queuekit_")]
    redis_url = urlunsplit(parts._replace(query=urlencode(rest)))
    try:
        parse_url(redis_url)
    except ValueError as exc:
        raise InvalidURLError(f"bad Redis URL {url!r}: {exc}") from None
    return redis_url, ours.get("queuekit_prefix"), cluster_flag in TRUE


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _enqueue_args(job: NewJob, seq: int, taken: bool) -> list[str]:
    run_at = "" if job.run_at is None else str((job.run_at - EPOCH) // timedelta(microseconds=1))
    return [
        job.id,
        str(seq),
        job.type,
        job.payload_json,
        str(job.priority),
        str(job.max_attempts),
        str(_micros(job.delay)),
        run_at,
        job.unique_key or "",
        "1" if taken else "0",
        job.headers_json or "",
    ]


def _new_job(job: NewJob, created_at: str, scheduled_at: str) -> Job:
    row = dict.fromkeys(ROW_FIELDS)
    row.update(
        id=job.id,
        queue=job.queue,
        type=job.type,
        payload=job.payload_json,
        priority=job.priority,
        status=JobStatus.PENDING,
        attempts=0,
        max_attempts=job.max_attempts,
        created_at=created_at,
        scheduled_at=scheduled_at,
        unique_key=job.unique_key,
        headers=job.headers_json,
    )
    return job_from_row(row)


def _job(fields: Sequence[str] | Mapping[str, str]) -> Job:
    """A job from its hash, as HGETALL returns it (a mapping, or a flat list from Lua)."""
    # Every row field present (None when the hash lacks it); extra fields (seq) do no harm.
    row: dict[str, Any] = dict.fromkeys(ROW_FIELDS)
    if isinstance(fields, Mapping):
        row.update(fields)
    else:
        pairs = iter(fields)
        row.update(zip(pairs, pairs, strict=True))
    for name in ("started_at", "finished_at", "lease_expires_at"):
        if row[name] is not None:
            row[name] = float(row[name])
    return job_from_row(row)


def _scored(reply: Any) -> list[tuple[str, float]]:
    """(member, score) pairs of a WITHSCORES reply, flat or paired as the client parses it."""
    if reply and isinstance(reply[0], list | tuple):
        return [(member, float(score)) for member, score in reply]
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]


def _text(value: Any) -> Any:
    """Replies as text whatever the client's `decode_responses`."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list | tuple | set):
        return [_text(item) for item in value]
    if isinstance(value, dict):
        return {_text(key): _text(item) for key, item in value.items()}
    return value


def _find_values(reply: Any, name: str) -> Iterator[Any]:
    """The values of `name` in a CONFIG GET reply, per node on a Cluster."""
    if isinstance(reply, dict):
        for key, value in reply.items():
            if key == name:
                yield value
            else:
                yield from _find_values(value, name)

"""`RedisCalls`: a backend's clients, and its calls through them: scripts, commands, pops.

Scripts go by SHA (by source after a flush; on a Cluster, again while their slot moves), plain
commands in one round trip, blocking pops on a connection of their own; a lost or refused
connection becomes `BackendUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeAlias, TypeVar

import anyio
from redis import exceptions as rx
from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from ...errors import BackendUnavailableError
from ..guards import require_open, unavailable_on
from .replies import find_values, text
from .scripts import SCRIPTS, script_sources
from .url import RedisURL, make_clients

log = logging.getLogger(__name__)
T = TypeVar("T")

Client: TypeAlias = "Redis | RedisCluster"
Call: TypeAlias = tuple[str, list[str], list[str]]
"""One script call: script name, KEYS, ARGV."""

MAX_BLOCK_SECONDS = 60.0
"""Longest single blocking pop; waits longer than this wake up and look again."""
BLOCK_GRACE_SECONDS = 5.0
"""How long past its own timeout a blocking pop may take before the server counts as gone."""
WAIT_SECONDS = 2.0
"""How long an enqueue waits for `wait_replicas` replicas to acknowledge it (Redis WAIT):
well under redis-py's default socket timeout (5 s), so that it, not the socket, gives up."""
NOT_RUN = (rx.TryAgainError, rx.ClusterError)
"""A Cluster's answers to a call it did not run: TRYAGAIN (its slot is moving and not all of
its keys are on one node), CLUSTERDOWN (a ClusterError), or redis-py giving up after following
16 redirections (ClusterError "TTL exhausted")."""
MOVING_SECONDS = 10.0
"""How long script calls refused while their slot moves are sent again before the call
raises `BackendUnavailableError`."""
DECIDED = "queuekit:decided"
"""How a script's reply starts when it carries the decisions it made for the dependents of the
jobs it ended, replayed or deleted (`with_decided` in lua/_dependencies.lua): then the reply,
then each decision. `eval_many` takes them off and gives them to `on_decided`."""
UNAVAILABLE = (rx.ConnectionError, rx.TimeoutError, rx.SlotNotCoveredError, *NOT_RUN, OSError)
"""Errors that mean the server (or the Cluster) cannot be reached, or cannot serve the call
now."""


@dataclass(frozen=True, slots=True)
class Clients:
    """What an open backend talks through."""

    client: Client
    blocking: Client
    """For blocking pops, which must not share the shared client's socket timeout."""
    block_cap: float | None
    """The longest pop, when `blocking` has a socket timeout (a given Cluster client)."""
    sentinel: Sentinel | None
    """To close with the clients, when they came through Sentinel."""
    decoded: bool
    """Whether `client` decodes replies itself (else `text` does)."""


class ScriptObserver(Protocol):
    """Sees every script call before it is sent (the tests check the keys' slots)."""

    def __call__(self, name: str, keys: Sequence[str]) -> None: ...


class RedisCalls:
    """Connects from a parsed URL (`target`), or around a `given` client it does not close.

    `cluster`: the server is a Redis Cluster. `wait_replicas`: how many replicas a replicated
    call waits for (Redis WAIT).
    """

    def __init__(
        self,
        target: RedisURL | None,
        given: Client | None,
        *,
        cluster: bool,
        strict_keys: bool,
        wait_replicas: int,
    ) -> None:
        self._target = target
        self._given = given
        self.cluster = cluster
        self.wait_replicas = wait_replicas
        self._clients: Clients | None = None
        """Set while open."""
        self._sources = script_sources(strict_keys)
        self._shas = {
            name: hashlib.sha1(source.encode()).hexdigest()
            for name, source in self._sources.items()
        }
        self.script_observer: ScriptObserver | None = None
        self.on_decided: Callable[[list[list[str]]], Awaitable[None]] | None = None
        """Given the decisions for dependents that scripts' replies carried, before the
        replies are returned (see `DECIDED`)."""
        self.cross_slot = not cluster
        """Whether one script may use keys of several slots (enqueue, claim): not on a
        Cluster, nor behind a proxy that shards."""
        self.guard = partial(unavailable_on, (*UNAVAILABLE, rx.RedisClusterException), "Redis")
        """Turns a lost or refused connection into `BackendUnavailableError`."""

    @property
    def is_open(self) -> bool:
        return self._clients is not None

    async def open(self) -> None:
        """Connect, check the server answers, and load the scripts."""
        self._clients = clients = self._connect()
        with self.guard():
            # A Cluster client learns the topology before its first commands: redis-py closes
            # the connections of commands that race its first refresh (a pop would wake at once).
            for client in {id(c): c for c in (clients.client, clients.blocking)}.values():
                if isinstance(client, RedisCluster):
                    await _driven(client.initialize())
            await _driven(clients.client.ping())
        await self._warn_about_eviction()
        await self._load_scripts()

    def _connect(self) -> Clients:
        if self._given is None:
            assert self._target is not None
            options: dict[str, Any] = {"decode_responses": True, "retry": Retry(NoBackoff(), 0)}
            client, blocking, sentinel = make_clients(self._target, options)
            for made in (client, blocking):
                if isinstance(made, RedisCluster):
                    # Else every 5th MOVED makes redis-py close every connection of the
                    # client, in use or not: replies of scripts other tasks had running are
                    # lost (a claim's jobs would wait out their lease). A MOVED still
                    # remaps its slot, and a lost connection the whole map (`_sending`).
                    made.reinitialize_steps = 0
            return Clients(client, blocking, None, sentinel, decoded=True)
        if isinstance(self._given, RedisCluster):
            # A cluster client cannot be copied faithfully; share it and keep each pop
            # shorter than its socket timeout.
            timeout = self._given.get_connection_kwargs().get("socket_timeout")
            cap = None if timeout is None else 0.8 * float(timeout)
            return Clients(self._given, self._given, cap, None, _decodes(self._given))
        pool = self._given.connection_pool
        kwargs = {**pool.connection_kwargs, "socket_timeout": None}
        blocking = Redis(connection_pool=ConnectionPool(pool.connection_class, **kwargs))
        return Clients(self._given, blocking, None, None, _decodes(self._given))

    async def close(self) -> None:
        """Close the clients this made (not a given one)."""
        clients, self._clients = self._clients, None
        if clients is None:
            return
        for owned in {id(c): c for c in (clients.client, clients.blocking)}.values():
            if owned is self._given:
                continue
            with contextlib.suppress(Exception):
                if isinstance(owned, Redis):
                    await owned.aclose(close_connection_pool=True)
                else:
                    await owned.aclose()
        if clients.sentinel is not None:
            with contextlib.suppress(Exception):
                await clients.sentinel.aclose()

    def opened(self) -> Clients:
        """The clients of the open backend."""
        return require_open(self._clients, "Redis")

    async def _warn_about_eviction(self) -> None:
        """Warn when Redis may evict keys under memory pressure, jobs included."""
        try:
            reply = await _driven(self.opened().client.config_get("maxmemory-policy"))
        except (rx.ResponseError, *UNAVAILABLE):
            return  # CONFIG may be disabled or forbidden (managed Redis); nothing to check
        policies = {str(policy) for policy in find_values(text(reply), "maxmemory-policy")}
        evicting = sorted(policy for policy in policies if policy.startswith("allkeys-"))
        if evicting:
            log.warning(
                "Redis maxmemory-policy is %s: under memory pressure Redis may evict job keys "
                "and lose jobs; set maxmemory-policy noeviction (see docs/redis.md)",
                ", ".join(evicting),
            )

    async def _load_scripts(self, names: Sequence[str] = SCRIPTS) -> None:
        """SCRIPT LOAD (on every primary of a Cluster), so calls can go by SHA."""
        client = self.opened().client
        with self.guard():
            if isinstance(client, RedisCluster):  # each SCRIPT LOAD goes to every primary
                shas = [await _driven(client.script_load(self._sources[name])) for name in names]
            else:
                pipe = client.pipeline(transaction=False)
                for name in names:
                    pipe.script_load(self._sources[name])
                shas = await _driven(pipe.execute())
        for name, sha in zip(names, shas, strict=True):
            if text(sha) != self._shas[name]:
                raise RuntimeError(f"Redis returned SHA {sha!r} for script {name}")

    async def eval(
        self, name: str, keys: list[str], args: list[str], *, replicated: bool = False
    ) -> Any:
        return (await self.eval_many([(name, keys, args)], replicated=replicated))[0]

    async def eval_many(self, calls: Sequence[Call], *, replicated: bool = False) -> list[Any]:
        """Run script calls by SHA in one round trip.

        After a restart or SCRIPT FLUSH, Redis answers NOSCRIPT (and ran nothing): those calls
        are sent again with their source (EVAL, which no flush can race), then the scripts are
        loaded again so later calls go by SHA. Calls a Cluster did not run because their slot
        is moving are sent again, for up to MOVING_SECONDS. `replicated`: on the same
        connection, WAIT until `wait_replicas` replicas have what they wrote.
        """
        replicas = self.wait_replicas if replicated else 0
        if not calls:
            return []
        decoded = self.opened().decoded
        if self.script_observer is not None:
            for name, keys, _ in calls:
                self.script_observer(name, keys)
        async with self._sending():
            results = await self._send_evals(calls, by_sha=True, replicas=replicas)
            missing = [
                i for i, result in enumerate(results) if isinstance(result, rx.NoScriptError)
            ]
            if missing:
                again = await self._send_evals(
                    [calls[i] for i in missing], by_sha=False, replicas=replicas
                )
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
                await self._load_scripts(sorted({calls[i][0] for i in missing}))
            await self._while_moving(calls, results)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        replies = results if decoded else text(results)
        decided: list[list[str]] = []
        for i, reply in enumerate(replies):
            if type(reply) is list and reply and reply[0] == DECIDED:
                replies[i] = reply[1]
                decided += reply[2:]
        if decided and self.on_decided is not None:
            await self.on_decided(decided)
        return replies

    async def _while_moving(self, calls: Sequence[Call], results: list[Any]) -> None:
        """Send again, in place, the calls a Cluster did not run because their slot moves.

        While a slot migrates, a script whose keys are not all on one of the two nodes (or
        that names a key neither has, as most do) gets TRYAGAIN (or redirections, which
        redis-py follows 16 times) until the last key has moved. Nothing ran, so sending it
        again is safe, and it runs once the move is over. (CLUSTERDOWN is not waited out: a
        failover takes longer, and callers retry.)
        """
        delay, deadline = 0.01, anyio.current_time() + MOVING_SECONDS
        while anyio.current_time() < deadline:
            waiting = [i for i, result in enumerate(results) if _moving(result)]
            if not waiting:
                return
            await anyio.sleep(delay)
            delay = min(2 * delay, 0.5)
            again = await self._send_evals([calls[i] for i in waiting], by_sha=True)
            for i, result in zip(waiting, again, strict=True):
                results[i] = result

    @contextlib.asynccontextmanager
    async def _sending(self) -> AsyncIterator[None]:
        """`guard`; on a Cluster, a lost connection also makes the client map the slots again.

        redis-py does that itself when a single command loses its connection, but not when a
        pipeline does: its pipelines would go on sending to a primary that died, even after a
        replica took over its slots, and a worker (whose claims are pipelines) would never
        recover.
        """
        with self.guard():
            try:
                yield
            except (rx.ConnectionError, rx.TimeoutError, OSError):
                client = self.opened().client
                if isinstance(client, RedisCluster):
                    with contextlib.suppress(*UNAVAILABLE, rx.RedisClusterException):
                        await client.nodes_manager.initialize()
                raise

    async def _send_evals(
        self, calls: Sequence[Call], *, by_sha: bool, replicas: int = 0
    ) -> list[Any]:
        client = self.opened().client
        commands = [
            ("EVALSHA", self._shas[name]) if by_sha else ("EVAL", self._sources[name])
            for name, _, _ in calls
        ]
        if len(calls) == 1 and not replicas and not self.cluster:
            (_, keys, args), command = calls[0], commands[0]
            try:
                reply = await _driven(client.execute_command(*command, len(keys), *keys, *args))
                return [reply]
            except rx.NoScriptError as exc:
                return [exc]
        # On a Cluster even one call goes as a pipeline: a single command answered CLUSTERDOWN
        # makes redis-py close every connection of the client, in use or not, and the replies
        # of other tasks' scripts (claims, completions: they ran) would be lost.
        pipe = client.pipeline(transaction=False)
        for (_, keys, args), command in zip(calls, commands, strict=True):
            pipe.execute_command(*command, len(keys), *keys, *args)
        if replicas:
            pipe.execute_command("WAIT", replicas, round(WAIT_SECONDS * 1000))
        results = list(await _driven(pipe.execute(raise_on_error=False)))
        if replicas:
            _check_replicated(results.pop(), replicas)
        return results

    async def eval_cross_slot(
        self, name: str, keys: list[str], args: list[str], *, replicated: bool = False
    ) -> Any:
        """Run a script whose keys may span slots; ['fallback'] when the server refuses that."""
        try:
            return await self.eval(name, keys, args, replicated=replicated)
        except rx.ResponseError as exc:
            if "CROSSSLOT" not in str(exc):
                raise
            # A proxy that shards behind one address refuses keys of several slots (having
            # run nothing): use the one-slot scripts from now on.
            self.cross_slot = False
            return ["fallback"]

    async def commands(self, commands: Sequence[Sequence[str]]) -> list[Any]:
        """Plain commands in one round trip: reads across slots, and idempotent index repairs."""
        if not commands:
            return []
        clients = self.opened()
        async with self._sending():
            if len(commands) == 1 and not self.cluster:  # (a Cluster: see _send_evals)
                results = [await _driven(clients.client.execute_command(*commands[0]))]
            else:
                pipe = clients.client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                results = list(await _driven(pipe.execute(raise_on_error=False)))
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return results if clients.decoded else text(results)

    async def block(self, keys: list[str], seconds: float) -> None:
        """BLPOP on a connection of its own; a Cluster pops each key (slot) separately.

        Each pop runs in a task of its own, so that a cancel redis-py could swallow (see
        `_driven`) reaches the caller: it is taken in `asyncio.wait` and handed on to the pops.
        """
        clients = self.opened()
        client = clients.blocking
        seconds = min(seconds, MAX_BLOCK_SECONDS, clients.block_cap or math.inf)
        wait = math.ceil(seconds * 1000) / 1000  # BLPOP's 0 would mean for ever
        groups = [[key] for key in keys] if self.cluster else [keys]
        with self.guard(), anyio.move_on_after(wait + BLOCK_GRACE_SECONDS) as scope:
            pops = [asyncio.ensure_future(client.blpop(group, timeout=wait)) for group in groups]
            try:
                done, _ = await asyncio.wait(pops, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await _wind_down(pops)
            for pop in done:
                if self.cluster:
                    _raise_unless_lost(pop)
                else:
                    pop.result()
        if scope.cancelled_caught:
            raise BackendUnavailableError("Redis did not answer a blocking pop in time")


async def _driven(call: Awaitable[T]) -> T:
    """`call` (a redis-py command), with a cancellation that it swallowed raised again.

    redis-py can swallow one that comes as a reply arrives (redis-py #2028; about one cancel
    in thirty, here), and a task cancelled by `Task.cancel` (a worker run by
    `asyncio.create_task`, say) would then run on for ever. A cancel requested while the call
    ran and not raised by it was swallowed: the reply is dropped and the cancel raised. (Each
    call once ran in a task of its own, awaited through a shield, to the same end, at the cost
    of that task and two more turns of the event loop for every call.)"""
    task = asyncio.current_task()
    assert task is not None, "queuekit's Redis calls run in an asyncio task"
    requested = task.cancelling()
    reply = await call
    if task.cancelling() > requested:
        # A cancelled anyio scope delivers its cancel again here, as one it knows for its own
        # (a bare CancelledError would escape the scope, as if the task had been cancelled);
        # a cancel from `Task.cancel` is raised as asyncio raises it.
        await anyio.lowlevel.checkpoint_if_cancelled()
        raise asyncio.CancelledError
    return reply


async def _wind_down(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel the tasks of driver calls and wait for them to end, whatever they raise.

    Shielded: a cancellation delivered again while they wind down would cancel the gather
    itself, which raises a call's CancelledError, one that anyio does not recognise as its own
    (it escaped a worker's shutdown)."""
    for task in tasks:
        task.cancel()
    with anyio.CancelScope(shield=True):
        await asyncio.gather(*tasks, return_exceptions=True)


def _raise_unless_lost(pop: asyncio.Future[Any]) -> None:
    """Raise a Cluster pop's error, unless it is a lost connection: that counts as a wake-up.

    redis-py's Cluster client disconnects a node's idle connections when one of its commands
    loses the connection, and a pop racing beside it can be handed one of those (its write then
    finds the socket closed). Waking early is always safe: the caller looks for work again, and
    the claim that follows reports a node that is really gone.
    """
    if not isinstance(pop.exception(), rx.ConnectionError):
        pop.result()


def _moving(result: Any) -> bool:
    return isinstance(result, NOT_RUN) and not isinstance(result, rx.ClusterDownError)


def _check_replicated(reply: Any, wanted: int) -> None:
    """Raise unless WAIT says `wanted` replicas acknowledged the connection's writes."""
    if isinstance(reply, BaseException):
        raise reply
    if int(reply) < wanted:
        raise BackendUnavailableError(
            f"only {reply} of {wanted} replicas acknowledged the enqueue within {WAIT_SECONDS:g} s:"
            " the primary has it, but could lose it in a failover"
        )


def _decodes(client: Client) -> bool:
    return bool(client.get_encoder().decode_responses)

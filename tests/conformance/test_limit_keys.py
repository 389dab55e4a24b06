"""Conformance: the per-key state of limits is dropped once a key has nothing left to keep."""

from __future__ import annotations

import sqlite3

from queuekit import Backend, Limits, Queue
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.postgres import PostgresBackend
from queuekit.backends.redis import RedisBackend
from queuekit.backends.sqlite import SQLiteBackend

from .helpers import claim
from .test_limits import enqueue_keyed, finish, keys_of

QUEUE = "default"
STATES = ("lk:window", "lk:started", "lk:held", "lk:served")
"""The Redis hashes of key states, a field per key ('' being the queue's own)."""
TURN_SETS = ("kwait", "kpark", "krun", "kidle")
"""The Redis sorted sets of keys (turns, parked, running, idle)."""


async def key_states(backend: Backend, keys: list[str]) -> int:
    """How many entries of per-key state `backend` keeps for `keys` of the queue (a queue's
    own state, one per queue, is not counted)."""
    if isinstance(backend, MemoryBackend):
        return sum(key in keys for key in backend._flow._states.get(QUEUE, {}))
    if isinstance(backend, SQLiteBackend):
        with sqlite3.connect(backend.path) as db:
            (count,) = db.execute(
                "SELECT (SELECT count(*) FROM queuekit_limit_keys WHERE key <> '')"
                " + (SELECT count(*) FROM queuekit_limit_ready WHERE key <> '')"
            ).fetchone()
        return int(count)
    if isinstance(backend, PostgresBackend):
        table = f'"{backend.schema}"."{backend.table}'
        count = await backend._require_pool().fetchval(
            f"SELECT (SELECT count(*) FROM {table}_limit_keys\" WHERE key <> '')"
            f" + (SELECT count(*) FROM {table}_limit_ready\" WHERE key <> '')"
        )
        return int(count)
    assert isinstance(backend, RedisBackend)
    of = backend._keys.of_queue
    commands: list[tuple[str, ...]] = [("HLEN", of(QUEUE, name)) for name in STATES]
    commands += [("HEXISTS", of(QUEUE, name), "") for name in STATES]
    commands += [("ZCARD", of(QUEUE, name)) for name in TURN_SETS]
    commands += [
        ("EXISTS", *(of(QUEUE, f"{kind}:{key}") for key in keys)) for kind in ("kline", "kopen")
    ]
    replies = [int(reply) for reply in await backend._calls.commands(commands)]
    fields, own, rest = replies[:4], replies[4:8], replies[8:]
    return sum(fields) - sum(own) + sum(rest)


async def drain(backend: Backend) -> int:
    drained = 0
    while jobs := await claim(backend, 100):
        await finish(backend, jobs)
        drained += len(jobs)
    return drained


async def test_the_state_of_drained_keys_is_dropped(queue: Queue, backend: Backend) -> None:
    """1,000 keys drained leave no state behind once the workers' chores ran (`expire`), and
    a key whose state went, when it comes back, takes its turns as a new key does."""
    keys = [f"k{n}" for n in range(1000)]
    await queue.set_limits(QUEUE, Limits(per_key=1))
    await enqueue_keyed(queue, keys)
    assert await drain(backend) == 1000
    await backend.expire()
    assert await key_states(backend, keys) == 0

    await enqueue_keyed(queue, ["k7", "k7", "k8"])
    first = await claim(backend, 10)
    assert keys_of(first) == {"k7": 1, "k8": 1}
    await finish(backend, first)
    assert keys_of(await claim(backend, 10)) == {"k7": 1}


async def test_a_key_with_an_open_rate_window_or_hold_keeps_its_state(
    queue: Queue, backend: Backend
) -> None:
    """A key's state stays while it still counts: its rate window (here a year long) still
    limits it, and a hold of a key with no job stays in force."""
    await queue.set_limits(QUEUE, Limits(key_rate=1, period=365 * 24 * 3600))
    await enqueue_keyed(queue, ["rated"])
    await queue.hold(QUEUE, 3600, key="held")
    assert await drain(backend) == 1
    await backend.expire()
    await enqueue_keyed(queue, ["rated", "held", "free"])
    assert keys_of(await claim(backend, 10)) == {"free": 1}

"""PostgreSQL's unique and debounce keys (migration 16): many connections enqueueing one unique or
debounce key at once leave one holder and raise nothing; calls taking keys in other orders
all go through; keys on a caller's transaction; holds let go by replays. (A batch of
100,000 jobs runs on every backend in tests/workflows/test_big_batch.py.)"""

from __future__ import annotations

import asyncio

import asyncpg

import queuekit
from queuekit import Job, JobStatus, NewJob, OnConflict
from queuekit.backends.postgres import PostgresBackend

from ..conformance.helpers import claim
from ..waiting import eventually
from .conftest import OpenBackend
from .test_transactional import TRANSACTIONS, Transaction

CLIENTS = 4
"""Backends, each with its own pool, enqueueing at once."""
CALLS = 12
"""Concurrent enqueues per backend: more than its pool holds, so every connection is busy."""


async def _clients(open_backend: OpenBackend) -> list[PostgresBackend]:
    """`CLIENTS` backends whose pools have all their connections open before the race."""
    return [await open_backend(pool_min="8", pool_max="8") for _ in range(CLIENTS)]


async def _all_at_once(clients: list[PostgresBackend], requests: list[NewJob]) -> list[Job]:
    """Enqueue `requests` at once, spread over `clients`."""
    return list(
        await asyncio.gather(
            *(clients[n % len(clients)].enqueue(job) for n, job in enumerate(requests))
        )
    )


async def _holders(backend: PostgresBackend, column: str, key: str) -> list[asyncpg.Record]:
    """The rows of the key's index: those holding `key` in `column` (unique or debounce)."""
    pool = backend._pool
    assert pool is not None
    held = (
        "(status IN ('waiting', 'pending', 'running', 'failed') "
        "OR status = ANY(string_to_array(unique_states, ',')))"
        if column == "unique_key"
        else "status IN ('waiting', 'pending')"
    )
    return list(
        await pool.fetch(
            f"SELECT id, payload::text AS payload FROM {backend.qualified_table} "
            f"WHERE {column} = $1 AND {held}",
            key,
        )
    )


async def test_many_connections_replacing_one_unique_key_leave_one_holder(
    open_backend: OpenBackend,
) -> None:
    clients = await _clients(open_backend)
    for round in range(3):
        requests = [
            queuekit.new_job("t", {"n": n}, unique_key=f"k{round}", on_conflict=OnConflict.REPLACE)
            for n in range(CLIENTS * CALLS)
        ]
        answers = await _all_at_once(clients, requests)
        holders = await _holders(clients[0], "unique_key", f"k{round}")
        assert len(holders) == 1
        assert {job.id for job in answers} == {holders[0]["id"]}
        # The holder has the payload of the enqueue that rewrote it last.
        assert holders[0]["payload"] in {f'{{"n":{n}}}' for n in range(CLIENTS * CALLS)}
    assert (await queuekit.Queue(clients[0]).stats()).pending == 3


async def test_many_connections_debouncing_one_key_leave_one_holder(
    open_backend: OpenBackend,
) -> None:
    clients = await _clients(open_backend)
    requests = [
        queuekit.new_job("t", {"n": n}, debounce_key="d", delay=3600.0, debounce_max=7200.0)
        for n in range(CLIENTS * CALLS)
    ]
    answers = await _all_at_once(clients, requests)
    holders = await _holders(clients[0], "debounce_key", "d")
    assert len(holders) == 1 and {job.id for job in answers} == {holders[0]["id"]}
    first = await clients[0].get_job(holders[0]["id"])
    assert first is not None and first.debounce_key == "d"
    assert (first.scheduled_at - first.created_at).total_seconds() <= 7200.0


async def test_many_connections_letting_a_lapsed_hold_go_store_one_job(
    open_backend: OpenBackend,
) -> None:
    """A completed holder's period ends; every concurrent enqueue finds it over, and one of
    them stores the new holder (the others find that one)."""
    clients = await _clients(open_backend)
    queue = queuekit.Queue(clients[0])
    first = await queue.enqueue("t", unique_key="k", unique_for=0.05)
    (running,) = await claim(clients[0])
    assert await clients[0].complete(running.attempt) == JobStatus.COMPLETED

    async def lapsed() -> bool:
        probe = await queue.enqueue("probe", queue="clock")
        return (probe.created_at - first.created_at).total_seconds() > 0.05

    await eventually(lapsed, "the hold's period ended by the server's clock")
    requests = [
        queuekit.new_job("t", {"n": n}, unique_key="k", unique_for=3600.0)
        for n in range(CLIENTS * CALLS)
    ]
    answers = await _all_at_once(clients, requests)
    holders = await _holders(clients[0], "unique_key", "k")
    assert len(holders) == 1 and holders[0]["id"] != first.id
    assert {job.id for job in answers} == {holders[0]["id"]}
    assert (await queue.get_job(first.id)).status == JobStatus.COMPLETED


async def test_calls_taking_keys_in_other_orders_all_go_through(
    open_backend: OpenBackend,
) -> None:
    """Calls taking the same keys in opposite orders, all at once: each takes them in one
    order (migration 16), so none waits for another in a circle, and every call answers."""
    clients = await _clients(open_backend)
    keys = [f"k{n}" for n in range(20)]
    calls = [
        [queuekit.new_job("t", unique_key=key) for key in (keys if n % 2 else keys[::-1])]
        for n in range(CLIENTS * 4)
    ]
    answers = await asyncio.gather(
        *(clients[n % CLIENTS].enqueue_many(call) for n, call in enumerate(calls))
    )
    for key_index, key in enumerate(keys):
        (holder,) = await _holders(clients[0], "unique_key", key)
        for n, answer in enumerate(answers):
            position = key_index if n % 2 else len(keys) - 1 - key_index
            assert answer[position].id == holder["id"]


async def _lapse(queue: queuekit.Queue, holder: Job, seconds: float) -> None:
    """Return once the server's clock is `seconds` past `holder`'s enqueue."""

    async def over() -> bool:
        probe = await queue.enqueue("probe", queue="clock")
        return (probe.created_at - holder.created_at).total_seconds() > seconds

    await eventually(over, "a hold's period ended by the server's clock")


async def _finish(backend: PostgresBackend, job: Job, *, dead: bool = False) -> None:
    (running,) = await claim(backend)
    assert running.id == job.id
    if dead:
        assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
    else:
        assert await backend.complete(running.attempt) == JobStatus.COMPLETED


async def test_a_replay_lets_a_lapsed_holder_go(pg_backend: PostgresBackend) -> None:
    """The finished holder whose period is over still sits in the unique index until a write
    lets it go: the replay does, in its own statement, and takes the key. A holder whose
    period lasts blocks the replay."""
    queue = queuekit.Queue(pg_backend)
    dead: dict[str, Job] = {}
    holders: dict[str, Job] = {}
    for key, period in (("held", 86_400.0), ("k", 0.05)):
        dead[key] = await queue.enqueue("t", unique_key=key)
        await _finish(pg_backend, dead[key], dead=True)
        holders[key] = await queue.enqueue("t", unique_key=key, unique_for=period)
        await _finish(pg_backend, holders[key])
    assert (await queue.replay(dead["held"].id)).status == JobStatus.DEAD
    await _lapse(queue, holders["k"], 0.05)
    assert (await queue.replay(dead["k"].id)).status == JobStatus.PENDING
    assert (await queue.enqueue("t", unique_key="k")).id == dead["k"].id
    assert (await queue.get_job(holders["k"].id)).status == JobStatus.COMPLETED


async def test_a_dependent_brought_back_lets_a_lapsed_holder_go(
    pg_backend: PostgresBackend,
) -> None:
    queue = queuekit.Queue(pg_backend)
    parent = await queue.enqueue("parent", queue="parents")
    child = await queue.enqueue("t", unique_key="k", after=[parent])
    (running,) = await claim(pg_backend, queue="parents")
    assert await pg_backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
    assert (await queue.get_job(child.id)).status == JobStatus.CANCELLED
    holder = await queue.enqueue("t", unique_key="k", unique_for=0.05)
    await _finish(pg_backend, holder)
    await _lapse(queue, holder, 0.05)
    assert (await queue.replay(parent.id)).status == JobStatus.PENDING
    assert (await queue.get_job(child.id)).status == JobStatus.WAITING
    assert (await queue.enqueue("t", unique_key="k")).id == child.id


@TRANSACTIONS
async def test_keys_on_the_callers_transaction(
    pg_backend: PostgresBackend, dsn: str, transaction: Transaction
) -> None:
    queue = queuekit.Queue(pg_backend)
    requests = [
        queuekit.new_job("t", {"v": 1}, unique_key="k", unique_for=60.0),
        queuekit.new_job("t", {"v": 2}, unique_key="k", on_conflict=OnConflict.REPLACE),
        queuekit.new_job("t", {"v": 1}, debounce_key="d", debounce_max=60.0, delay=3600.0),
        queuekit.new_job("t", {"v": 2}, debounce_key="d", delay=7200.0),
    ]
    async with transaction(dsn) as conn:
        jobs = await queue.enqueue_many(requests, connection=conn)
    assert jobs[0].id == jobs[1].id and jobs[1].payload == {"v": 2}
    assert jobs[2].id == jobs[3].id and jobs[3].payload == {"v": 2}
    assert (jobs[3].scheduled_at - jobs[2].created_at).total_seconds() == 60.0
    assert (await queue.get_job(jobs[0].id)).payload == {"v": 2}

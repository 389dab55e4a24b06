"""PostgreSQL behind a real PgBouncer (Debian's stock 1.18, started by the run).

`queuekit_pgbouncer=transaction` connects although PgBouncer refuses `jit` & co. in the startup
packet, applies them with `SET LOCAL` where they matter, needs no prepared statement to survive
between transactions, and wakes workers by polling or through a direct LISTEN connection.
The conformance suite through it is in test_pgbouncer_conformance.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

import queuekit
from queuekit import InvalidURLError, JobStatus, Tasks, Worker
from queuekit.backends.postgres import PostgresBackend
from queuekit.backends.postgres.connections import SET_LOCAL
from queuekit.backends.postgres.pgbouncer import TUNED_STATEMENTS, fetch_with_settings

from ..setups import BackendSetup, require_postgres_dsn, with_url_options
from ..waiting import eventually
from .pgbouncer import pgbouncer_dsns, pgbouncer_setup

JOBS = 300
WOKEN = 30.0
"""A wake-up came, not the end of a 60 s wait, even on a busy machine."""


def test_the_pgbouncer_option_sets_what_transaction_mode_needs() -> None:
    url = "postgresql://app@bouncer:6432/app?queuekit_pgbouncer=transaction"
    backend = PostgresBackend.from_url(url)
    assert backend.pgbouncer == "transaction"
    assert backend.poll_only, "LISTEN through transaction pooling hears nothing"
    assert backend._statement_cache_size == 0
    assert set(backend._sql) >= TUNED_STATEMENTS
    assert backend._server_settings(backend._dsn) == {"application_name": "queuekit"}

    direct = "postgresql://app@db:5432/app"
    listening = PostgresBackend.from_url(
        with_url_options(url, queuekit_listen_dsn=direct, queuekit_statement_cache_size="100")
    )
    assert not listening.poll_only
    assert listening._statement_cache_size == 100, "for PgBouncer 1.21+ max_prepared_statements"
    assert "jit" in listening._server_settings(direct), "the direct connection is not pooled"

    session = PostgresBackend.from_url(url.replace("transaction", "Session"))
    assert session.pgbouncer == "session" and not session.poll_only
    assert session._statement_cache_size == 100


@pytest.mark.parametrize("value", ["statement", "", "on", "transactions"])
def test_an_unknown_pool_mode_is_refused(value: str) -> None:
    with pytest.raises(InvalidURLError, match="pool mode"):
        PostgresBackend.from_url(f"postgresql://app@bouncer/app?queuekit_pgbouncer={value}")


async def test_without_the_option_pgbouncer_refuses_the_connection() -> None:
    """What the option is for: a stock PgBouncer refuses queuekit's startup settings."""
    with pytest.raises(queuekit.BackendUnavailableError, match="jit"):
        await PostgresBackend(pgbouncer_dsns()["transaction"], connect_timeout=10).open()


@pytest.fixture
async def transaction_pooled() -> AsyncIterator[BackendSetup]:
    async with pgbouncer_setup("transaction") as setup:
        yield setup


async def test_the_tuned_statements_run_with_the_settings_set_locally(
    transaction_pooled: BackendSetup,
) -> None:
    backend = transaction_pooled.make()
    assert isinstance(backend, PostgresBackend)
    await backend.open()
    try:
        show = "SELECT current_setting('jit'), current_setting('enable_seqscan'), $1::int"
        pool = backend._require_pool()
        async with pool.acquire() as conn:
            tuned = await fetch_with_settings(conn, SET_LOCAL, show, [1])
            after = await conn.fetchrow(show, 2)
        assert tuple(tuned[0]) == ("off", "off", 1)
        assert after is not None and after[1] == "on", "SET LOCAL ends with its transaction"
    finally:
        await backend.close()


async def _drain(setup: BackendSetup, processes: int = 3) -> None:
    """Workers on `processes` backends drain JOBS jobs enqueued through `setup`."""
    tasks = Tasks()
    done: list[int] = []

    @tasks.task("add")
    async def add(n: int) -> int:
        done.append(n)
        return n + 1

    async with contextlib.AsyncExitStack() as stack:
        producer = await stack.enter_async_context(queuekit.Queue(setup.make()))
        jobs = await producer.enqueue_many(
            queuekit.new_job("add", {"n": n}) for n in range(JOBS // 2)
        )
        for _ in range(processes):
            consumer = await stack.enter_async_context(queuekit.Queue(setup.make()))
            await stack.enter_async_context(
                Worker(consumer, tasks, concurrency=20, poll_interval=0.2)
            )
        # Half enqueued while they run, one by one: each claim races the others.
        for n in range(JOBS // 2, JOBS):
            jobs.append(await producer.enqueue("add", {"n": n}))

        async def all_completed() -> bool:
            return (await producer.stats("default")).completed == JOBS

        await eventually(all_completed, "every job completed")
        assert sorted(done) == list(range(JOBS)), "each job ran once"
        for job in jobs[:: JOBS // 10]:
            finished = await producer.get_job(job.id)
            assert finished is not None and finished.status == JobStatus.COMPLETED
            assert finished.result == job.payload["n"] + 1


async def test_workers_drain_through_transaction_pooling_by_polling(
    transaction_pooled: BackendSetup,
) -> None:
    await _drain(transaction_pooled)


async def test_workers_drain_through_session_pooling() -> None:
    # Four backends holding at most 4 + 1 (LISTEN) sessions each: within the pool's 30.
    async with pgbouncer_setup("session", queuekit_pool_max="4") as setup:
        await _drain(setup)


async def _woken_after(backend: PostgresBackend, timeout: float) -> float:
    started = time.monotonic()
    await backend.wait_for_work(["default"], timeout)
    return time.monotonic() - started


async def test_a_direct_listen_connection_wakes_waiters_of_a_pooled_backend() -> None:
    """NOTIFY goes out through PgBouncer with the enqueue; LISTEN hears it directly."""
    direct = require_postgres_dsn()
    async with pgbouncer_setup("transaction", queuekit_listen_dsn=direct) as setup:
        waiter, producer = setup.make(), setup.make()
        assert isinstance(waiter, PostgresBackend) and not waiter.poll_only
        await waiter.open()
        await producer.open()
        try:
            waiting = asyncio.create_task(_woken_after(waiter, 60.0))
            await eventually(lambda: waiter.listener_connections == 1, "listening")
            await producer.enqueue(queuekit.new_job("t"))
            assert await asyncio.wait_for(waiting, WOKEN) < WOKEN
            await _drain(setup, processes=2)
        finally:
            await waiter.close()
            await producer.close()

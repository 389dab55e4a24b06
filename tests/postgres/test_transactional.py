"""Enqueue inside the caller's own transaction: asyncpg, psycopg, and SQLAlchemy's on either."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import aiosqlite
import asyncpg
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import queuekit
from queuekit import InvalidConnectionError, InvalidOptionError, JobExistsError
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.postgres import PostgresBackend
from queuekit.backends.redis import RedisBackend

from ..setups import BackendSetup
from .conftest import OpenBackend

MINUTE = 60.0
"""The worker's poll interval: only a wake-up brings it a job sooner."""
WOKEN = 30.0

Transaction = Callable[[str], AbstractAsyncContextManager[object]]
"""Opens a connection to a DSN and a transaction on it for the block: committed at its end,
rolled back if the block raises."""


class Rollback(Exception):
    """Raised in a transaction block to roll it back."""


def _sqlalchemy_url(dsn: str, driver: str = "asyncpg") -> str:
    return f"postgresql+{driver}://" + dsn.split("://", 1)[1]


@asynccontextmanager
async def _asyncpg(dsn: str) -> AsyncIterator[object]:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def _psycopg(dsn: str) -> AsyncIterator[object]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn, conn.transaction():
        yield conn


@asynccontextmanager
async def _sqlalchemy_on_psycopg(dsn: str) -> AsyncIterator[object]:
    engine = create_async_engine(_sqlalchemy_url(dsn, "psycopg"))
    try:
        async with AsyncSession(engine) as session, session.begin():
            yield session
    finally:
        await engine.dispose()


@asynccontextmanager
async def _sqlalchemy_connection(dsn: str) -> AsyncIterator[object]:
    engine = create_async_engine(_sqlalchemy_url(dsn))
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


@asynccontextmanager
async def _sqlalchemy_session(dsn: str) -> AsyncIterator[object]:
    engine = create_async_engine(_sqlalchemy_url(dsn))
    try:
        async with AsyncSession(engine) as session, session.begin():
            yield session
    finally:
        await engine.dispose()


TRANSACTIONS = pytest.mark.parametrize(
    "transaction",
    [_asyncpg, _psycopg, _sqlalchemy_connection, _sqlalchemy_session, _sqlalchemy_on_psycopg],
    ids=["asyncpg", "psycopg", "sqlalchemy-connection", "sqlalchemy-session", "sqlalchemy-psycopg"],
)


@TRANSACTIONS
async def test_a_rolled_back_transaction_leaves_no_job(
    pg_backend: PostgresBackend, dsn: str, transaction: Transaction
) -> None:
    queue = queuekit.Queue(pg_backend)
    with contextlib.suppress(Rollback):
        async with transaction(dsn) as conn:
            job = await queue.enqueue("t", {"order": 1}, connection=conn)
            assert job.status == queuekit.JobStatus.PENDING
            raise Rollback
    assert await pg_backend.get_job(job.id) is None
    assert (await queue.list_jobs()).jobs == []


@TRANSACTIONS
async def test_a_committed_transaction_keeps_its_jobs(
    pg_backend: PostgresBackend, dsn: str, transaction: Transaction
) -> None:
    queue = queuekit.Queue(pg_backend)
    async with transaction(dsn) as conn:
        one = await queue.enqueue("t", connection=conn)
        many = await queue.enqueue_many(
            [queuekit.new_job("t", unique_key="k"), queuekit.new_job("t", unique_key="k")],
            connection=conn,
        )
        assert await pg_backend.get_job(one.id) is None  # not visible before the commit
    assert await pg_backend.get_job(one.id) == one
    assert many[0].id == many[1].id
    assert (await queue.stats()).pending == 2


@TRANSACTIONS
async def test_a_taken_id_is_refused_on_every_driver(
    pg_backend: PostgresBackend, dsn: str, transaction: Transaction
) -> None:
    queue = queuekit.Queue(pg_backend)
    taken = await queue.enqueue("t", id="taken")
    with contextlib.suppress(Rollback):
        async with transaction(dsn) as conn:
            with pytest.raises(JobExistsError) as raised:
                await queue.enqueue("t", id="taken", connection=conn)
            raise Rollback
    assert raised.value.job_id == "taken"
    assert (await queue.list_jobs()).jobs == [taken]


async def test_a_pool_connection_is_taken(pg_backend: PostgresBackend, dsn: str) -> None:
    queue = queuekit.Queue(pg_backend)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            job = await queue.enqueue("t", connection=conn)
    finally:
        await pool.close()
    assert await pg_backend.get_job(job.id) == job


@TRANSACTIONS
async def test_a_waiting_worker_wakes_at_the_commit(
    pg_backend: PostgresBackend, dsn: str, transaction: Transaction
) -> None:
    queue = queuekit.Queue(pg_backend)
    tasks = queuekit.Tasks()

    @tasks.task(max_attempts=1)
    async def receipt(order: int) -> int:
        return order * 10

    async with queuekit.Worker(queue, tasks, poll_interval=MINUTE):
        # Once the worker has run a job it waits for the next wake-up (or a minute's poll).
        assert await queue.result((await receipt.enqueue(queue, 0)).id, timeout=WOKEN) == 0
        async with transaction(dsn) as conn:
            typed = await receipt.enqueue_in_transaction(queue, conn, 1)
            optioned = await receipt.with_options(priority=5).enqueue_in_transaction(
                queue, conn, order=2
            )
            assert await pg_backend.get_job(typed.id) is None
        assert optioned.priority == 5
        assert await queue.result(typed.id, timeout=WOKEN) == 10
        assert await queue.result(optioned.id, timeout=WOKEN) == 20


async def test_the_wake_up_comes_with_the_commit(open_backend: OpenBackend, dsn: str) -> None:
    waiter, producer = await open_backend(), await open_backend()
    started = time.monotonic()
    waiting = asyncio.create_task(waiter.wait_for_work(["default"], MINUTE))
    await asyncio.sleep(0.3)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await queuekit.Queue(producer).enqueue("t", connection=conn)
            await asyncio.sleep(0.5)
            assert not waiting.done()  # NOTIFY is delivered at commit, not before
    finally:
        await conn.close()
    await asyncio.wait_for(waiting, WOKEN)  # woken by the commit, not the minute's timeout
    assert time.monotonic() - started > 0.75


async def test_a_connection_to_another_database_is_refused(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    queue = queuekit.Queue(pg_backend)
    # template1 is on every server; the test schema is in another database.
    conn = await asyncpg.connect(dsn, database="template1")
    try:
        async with conn.transaction():
            with pytest.raises(InvalidConnectionError, match="database 'template1'"):
                await queue.enqueue("t", connection=conn)
    finally:
        await conn.close()
    engine = create_async_engine(_sqlalchemy_url(dsn), connect_args={"database": "template1"})
    try:
        async with engine.begin() as other:
            with pytest.raises(InvalidConnectionError, match="database 'template1'"):
                await queue.enqueue("t", connection=other)
    finally:
        await engine.dispose()
    other_pg = await psycopg.AsyncConnection.connect(dsn, dbname="template1")
    async with other_pg, other_pg.transaction():
        with pytest.raises(InvalidConnectionError, match="database 'template1'"):
            await queue.enqueue("t", connection=other_pg)
    assert (await queue.list_jobs()).jobs == []


async def test_a_closed_connection_is_refused(pg_backend: PostgresBackend, dsn: str) -> None:
    queue = queuekit.Queue(pg_backend)
    conn = await asyncpg.connect(dsn)
    await conn.close()
    with pytest.raises(InvalidConnectionError, match="closed"):
        await queue.enqueue("t", connection=conn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        async with pool.acquire() as held:
            pass
        with pytest.raises(InvalidConnectionError, match="released"):
            await queue.enqueue("t", connection=held)
    finally:
        await pool.close()
    engine = create_async_engine(_sqlalchemy_url(dsn))
    try:
        async with engine.connect() as closed:
            pass
        with pytest.raises(InvalidConnectionError, match="closed"):
            await queue.enqueue("t", connection=closed)
    finally:
        await engine.dispose()
    async with await psycopg.AsyncConnection.connect(dsn) as closed_pg:
        pass
    with pytest.raises(InvalidConnectionError, match="closed"):
        await queue.enqueue("t", connection=closed_pg)
    assert (await queue.list_jobs()).jobs == []


async def test_a_connection_outside_a_transaction_is_refused(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    queue = queuekit.Queue(pg_backend)
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(InvalidConnectionError, match="no open transaction"):
            await queue.enqueue("t", connection=conn)
    finally:
        await conn.close()
    engine = create_async_engine(_sqlalchemy_url(dsn))
    try:
        async with engine.connect() as idle:
            with pytest.raises(InvalidConnectionError, match="no open transaction"):
                await queue.enqueue("t", connection=idle)
        async with AsyncSession(engine) as session:
            with pytest.raises(InvalidConnectionError, match="no open transaction"):
                await queue.enqueue("t", connection=session)
    finally:
        await engine.dispose()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as idle_pg:
        with pytest.raises(InvalidConnectionError, match="no open transaction"):
            await queue.enqueue("t", connection=idle_pg)
    assert (await queue.list_jobs()).jobs == []


async def test_another_kind_of_connection_is_refused(pg_backend: PostgresBackend) -> None:
    queue = queuekit.Queue(pg_backend)
    with pytest.raises(InvalidConnectionError, match="asyncpg"):
        await queue.enqueue("t", connection="not a connection")
    async with aiosqlite.connect(":memory:") as sqlite:
        await sqlite.execute("BEGIN")
        with pytest.raises(InvalidConnectionError, match="not Connection"):
            await queue.enqueue("t", connection=sqlite)
    assert (await queue.list_jobs()).jobs == []


async def test_other_backends_refuse_a_connection(pg: BackendSetup) -> None:
    memory = MemoryBackend()
    # Refused before the backend is used: this Redis client is never opened.
    for backend in (memory, RedisBackend.from_url("redis://127.0.0.1:1/0")):
        queue = queuekit.Queue(backend)
        with pytest.raises(InvalidConnectionError, match="PostgreSQL or SQLite"):
            await queue.enqueue("t", connection=object())
        with pytest.raises(InvalidOptionError):
            await queue.enqueue_many([queuekit.new_job("t")], connection=object())
    assert (await queuekit.Queue(memory).list_jobs()).jobs == []

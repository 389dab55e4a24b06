"""Enqueue inside the caller's own transaction (PostgreSQL only)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

import queuekit
from queuekit import InvalidOptionError
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.postgres import PostgresBackend

from ..setups import BackendSetup
from .conftest import OpenBackend


async def test_a_rolled_back_transaction_leaves_no_job(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    queue = queuekit.Queue(pg_backend)
    conn = await asyncpg.connect(dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        job = await queue.enqueue("t", {"order": 1}, connection=conn)
        assert job.status == queuekit.JobStatus.PENDING
        await transaction.rollback()
    finally:
        await conn.close()
    assert await pg_backend.get_job(job.id) is None
    assert (await queue.list_jobs()).jobs == []


async def test_a_committed_transaction_keeps_its_jobs(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    queue = queuekit.Queue(pg_backend)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            one = await queue.enqueue("t", connection=conn)
            many = await queue.enqueue_many(
                [queuekit.new_job("t", unique_key="k"), queuekit.new_job("t", unique_key="k")],
                connection=conn,
            )
            assert await pg_backend.get_job(one.id) is None  # not visible before the commit
    finally:
        await pool.close()
    assert await pg_backend.get_job(one.id) == one
    assert many[0].id == many[1].id
    assert (await queue.stats()).pending == 2


async def test_the_wake_up_comes_with_the_commit(open_backend: OpenBackend, dsn: str) -> None:
    waiter, producer = await open_backend(), await open_backend()
    started = time.monotonic()
    waiting = asyncio.create_task(waiter.wait_for_work(["default"], 60))
    await asyncio.sleep(0.3)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await queuekit.Queue(producer).enqueue("t", connection=conn)
            await asyncio.sleep(0.5)
            assert not waiting.done()  # NOTIFY is delivered at commit, not before
    finally:
        await conn.close()
    await asyncio.wait_for(waiting, 30)  # woken by the commit, not the 60 s timeout
    assert time.monotonic() - started > 0.75


async def test_other_backends_refuse_a_connection(pg: BackendSetup) -> None:
    queue = queuekit.Queue(MemoryBackend())
    with pytest.raises(InvalidOptionError):
        await queue.enqueue("t", connection=object())
    with pytest.raises(InvalidOptionError):
        await queue.enqueue_many([queuekit.new_job("t")], connection=object())
    assert (await queue.list_jobs()).jobs == []


async def test_the_connection_must_be_an_asyncpg_one(pg_backend: PostgresBackend) -> None:
    with pytest.raises(InvalidOptionError):
        await queuekit.Queue(pg_backend).enqueue("t", connection="not a connection")

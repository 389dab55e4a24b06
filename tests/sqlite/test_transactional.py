"""Enqueue inside the caller's own transaction on SQLite: an aiosqlite connection to the file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

import queuekit
from queuekit import InvalidConnectionError, JobStatus
from queuekit.backends.sqlite import SQLiteBackend

MINUTE = 60.0
"""The worker's poll interval: only the commit can bring it a job sooner."""
WOKEN = 30.0


@pytest.fixture
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[SQLiteBackend]:
    backend = SQLiteBackend(str(tmp_path / "jobs.db"))
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def caller(sqlite_backend: SQLiteBackend) -> AsyncIterator[aiosqlite.Connection]:
    """The application's own connection to the queue's database file, in a transaction."""
    async with aiosqlite.connect(sqlite_backend.path) as db:
        await db.execute("BEGIN")
        yield db


async def test_a_rolled_back_transaction_leaves_no_job(
    sqlite_backend: SQLiteBackend, caller: aiosqlite.Connection
) -> None:
    queue = queuekit.Queue(sqlite_backend)
    job = await queue.enqueue("t", {"order": 1}, connection=caller)
    assert job.status is JobStatus.PENDING
    await caller.rollback()
    assert await sqlite_backend.get_job(job.id) is None
    assert (await queue.list_jobs()).jobs == []


async def test_a_committed_transaction_keeps_its_jobs(
    sqlite_backend: SQLiteBackend, caller: aiosqlite.Connection
) -> None:
    queue = queuekit.Queue(sqlite_backend)
    await caller.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    await caller.execute("INSERT INTO orders VALUES (1)")
    one = await queue.enqueue("t", {"order": 1}, headers={"h": "v"}, connection=caller)
    many = await queue.enqueue_many(
        [queuekit.new_job("t", unique_key="k"), queuekit.new_job("t", unique_key="k")],
        connection=caller,
    )
    assert await sqlite_backend.get_job(one.id) is None  # not visible before the commit
    await caller.commit()
    assert await sqlite_backend.get_job(one.id) == one
    assert many[0].id == many[1].id
    assert (await queue.stats()).pending == 2


async def test_a_waiting_worker_wakes_at_the_commit(
    sqlite_backend: SQLiteBackend, caller: aiosqlite.Connection
) -> None:
    queue = queuekit.Queue(sqlite_backend)
    tasks = queuekit.Tasks()

    @tasks.task(max_attempts=1)
    async def receipt(order: int) -> int:
        return order * 10

    async with queuekit.Worker(queue, tasks, poll_interval=MINUTE):
        # The caller's transaction starts at its first write: take the write lock only after
        # the worker ran a job, so it waits for the next wake-up (or a minute's poll).
        await caller.rollback()
        assert await queue.result((await receipt.enqueue(queue, 0)).id, timeout=WOKEN) == 0
        await caller.execute("BEGIN")
        typed = await receipt.enqueue_in_transaction(queue, caller, 1)
        optioned = await receipt.with_options(priority=5).enqueue_in_transaction(
            queue, caller, order=2
        )
        assert await sqlite_backend.get_job(typed.id) is None
        await caller.commit()
        assert optioned.priority == 5
        assert await queue.result(typed.id, timeout=WOKEN) == 10
        assert await queue.result(optioned.id, timeout=WOKEN) == 20


async def test_a_connection_to_another_file_is_refused(
    sqlite_backend: SQLiteBackend, tmp_path: Path
) -> None:
    queue = queuekit.Queue(sqlite_backend)
    for other in (str(tmp_path / "other.db"), ":memory:"):
        async with aiosqlite.connect(other) as db:
            await db.execute("BEGIN")
            with pytest.raises(InvalidConnectionError, match="database file"):
                await queue.enqueue("t", connection=db)
    assert (await queue.list_jobs()).jobs == []


async def test_a_closed_connection_is_refused(sqlite_backend: SQLiteBackend) -> None:
    queue = queuekit.Queue(sqlite_backend)
    async with aiosqlite.connect(sqlite_backend.path) as db:
        pass
    with pytest.raises(InvalidConnectionError, match="closed"):
        await queue.enqueue("t", connection=db)
    assert (await queue.list_jobs()).jobs == []


async def test_a_connection_outside_a_transaction_is_refused(
    sqlite_backend: SQLiteBackend,
) -> None:
    queue = queuekit.Queue(sqlite_backend)
    async with aiosqlite.connect(sqlite_backend.path) as db:
        with pytest.raises(InvalidConnectionError, match="no open transaction"):
            await queue.enqueue("t", connection=db)
    assert (await queue.list_jobs()).jobs == []


async def test_another_kind_of_connection_is_refused(
    sqlite_backend: SQLiteBackend, caller: aiosqlite.Connection
) -> None:
    queue = queuekit.Queue(sqlite_backend)
    with pytest.raises(InvalidConnectionError, match="aiosqlite"):
        await queue.enqueue("t", connection="not a connection")
    with pytest.raises(InvalidConnectionError, match="aiosqlite"):
        await queue.enqueue("t", connection=await caller.cursor())
    assert (await queue.list_jobs()).jobs == []

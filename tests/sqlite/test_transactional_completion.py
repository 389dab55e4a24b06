"""Fenced transactional completion on SQLite: the handler's writes and the completion commit
together, on the handler's own aiosqlite connection to the queue's file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import anyio
import pytest

import queuekit
from queuekit import InvalidConnectionError, JobStatus, LeaseLostError, Outcome
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.context import JobContext


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[queuekit.Queue]:
    async with queuekit.Queue(SQLiteBackend(str(tmp_path / "jobs.db"))) as opened:
        yield opened


@pytest.fixture
async def conn(queue: queuekit.Queue, tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    """The handler's own connection to the queue's file, with an `orders` table."""
    async with aiosqlite.connect(tmp_path / "jobs.db") as connection:
        await connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, lease_token TEXT)")
        await connection.commit()
        yield connection


async def orders(conn: aiosqlite.Connection) -> list[tuple[int, str]]:
    return [(row[0], row[1]) for row in await conn.execute_fetchall("SELECT * FROM orders")]


async def test_the_writes_and_the_completion_commit_together(
    queue: queuekit.Queue, conn: aiosqlite.Connection
) -> None:
    tasks = queuekit.Tasks()
    reports: list[queuekit.JobReport] = []

    @tasks.task()
    async def pay(order: int) -> None:
        token = queuekit.current_job().lease_token
        async with queuekit.current_job().transaction(conn) as completion:
            await conn.execute("INSERT INTO orders VALUES (?, ?)", (order, token))
            completion.result = token

    async def keep(context: JobContext, report: queuekit.JobReport) -> None:
        reports.append(report)

    job = await pay.enqueue(queue, 7)
    await queuekit.Worker(queue, tasks, after_job=[keep]).run_until_empty()
    token = await queue.result(job.id, timeout=0)
    assert await orders(conn) == [(7, token)]
    assert [report.outcome for report in reports] == [Outcome.COMPLETED]


async def test_a_cancelled_attempt_rolls_its_writes_back(
    queue: queuekit.Queue, conn: aiosqlite.Connection
) -> None:
    tasks = queuekit.Tasks()
    started, proceed = anyio.Event(), anyio.Event()
    reports: list[queuekit.JobReport] = []

    @tasks.task()
    async def pay(order: int) -> None:
        started.set()
        # The block holds SQLite's write lock, so the cancel lands before it opens; shielded,
        # as the heartbeat may report the cancel first: the fence must catch it anyway.
        with anyio.CancelScope(shield=True):
            await proceed.wait()
        async with queuekit.current_job().transaction(conn):
            await conn.execute("INSERT INTO orders VALUES (?, 'x')", (order,))

    async def keep(context: JobContext, report: queuekit.JobReport) -> None:
        reports.append(report)

    job = await pay.enqueue(queue, 7)
    async with queuekit.Worker(queue, tasks, after_job=[keep]) as worker:
        with anyio.fail_after(30):
            await started.wait()
        cancelled = await queue.cancel(job.id)
        assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
        proceed.set()
        with anyio.fail_after(30):
            while not reports:
                await anyio.sleep(0.01)
        worker.stop()
    assert await orders(conn) == []
    assert [(report.outcome, report.error) for report in reports] == [(Outcome.LOST, None)]
    assert await queue.get_job(job.id) == cancelled  # no second outcome over the cancel
    assert not conn.in_transaction


async def test_bad_connections_are_refused_and_a_stale_attempt_is_fenced(
    queue: queuekit.Queue, conn: aiosqlite.Connection
) -> None:
    await queue.enqueue("t")
    [claimed] = await queue.backend.claim({"default": 1}, limit=1, lease=30, worker_id="w")
    context = JobContext(job=claimed, state={}, worker_id="w", queue=queue)
    with pytest.raises(InvalidConnectionError):
        async with context.transaction(object()):
            pass
    await conn.execute("BEGIN")
    with pytest.raises(InvalidConnectionError):
        async with context.transaction(conn):
            pass
    await conn.rollback()
    await queue.cancel(claimed.id)
    with pytest.raises(LeaseLostError):
        async with context.transaction(conn):
            await conn.execute("INSERT INTO orders VALUES (1, 'x')")
    assert context.lease_lost and not context.completed
    assert await orders(conn) == []


async def test_what_the_handler_does_after_the_block_changes_nothing(
    queue: queuekit.Queue, conn: aiosqlite.Connection
) -> None:
    tasks = queuekit.Tasks()
    reports: list[queuekit.JobReport] = []

    @tasks.task(max_attempts=3)
    async def pay(order: int) -> str:
        async with queuekit.current_job().transaction(conn) as completion:
            await conn.execute("INSERT INTO orders VALUES (?, 'x')", (order,))
            completion.result = "paid"
        if order == 1:
            raise LookupError("after the commit")
        return "dropped"

    async def keep(context: JobContext, report: queuekit.JobReport) -> None:
        reports.append(report)

    failing, returning = await pay.enqueue(queue, 1), await pay.enqueue(queue, 2)
    # One at a time: the two handlers share one connection, so one transaction at a time.
    await queuekit.Worker(queue, tasks, concurrency=1, after_job=[keep]).run_until_empty()
    assert await queue.result(failing.id, timeout=0) == "paid"
    assert await queue.result(returning.id, timeout=0) == "paid"
    assert [(report.outcome, report.error) for report in reports] == [
        (Outcome.COMPLETED, None),
        (Outcome.COMPLETED, None),
    ]
    assert sorted(order for order, _ in await orders(conn)) == [1, 2]

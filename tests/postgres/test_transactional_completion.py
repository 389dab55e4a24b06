"""Fenced transactional completion: a handler's writes and its job's completion commit together."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

import queuekit
from queuekit import InvalidConnectionError, InvalidOptionError, JobStatus, LeaseLostError, Outcome
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.postgres import PostgresBackend
from queuekit.context import JobContext

from ..waiting import eventually


@pytest.fixture
async def conn(pg_backend: PostgresBackend, dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """The handler's own connection, with an `orders` table beside the jobs."""
    connection = await asyncpg.connect(dsn)
    await connection.execute(f'SET search_path TO "{pg_backend.schema}"')
    await connection.execute("CREATE TABLE orders (id int PRIMARY KEY, lease_token text)")
    yield connection
    await connection.close()


async def orders(conn: asyncpg.Connection) -> list[tuple[int, str]]:
    return [(row["id"], row["lease_token"]) for row in await conn.fetch("SELECT * FROM orders")]


def reports_into(reports: list[queuekit.JobReport]) -> queuekit.worker.AfterJobHook:
    async def keep(context: JobContext, report: queuekit.JobReport) -> None:
        reports.append(report)

    return keep


async def test_the_writes_and_the_completion_commit_together(
    pg_backend: PostgresBackend, conn: asyncpg.Connection
) -> None:
    queue = queuekit.Queue(pg_backend)
    tasks = queuekit.Tasks()
    tokens: list[str] = []

    @tasks.task()
    async def pay(order: int) -> None:
        tokens.append(queuekit.current_job().lease_token)
        async with queuekit.current_job().transaction(conn) as completion:
            await conn.execute("INSERT INTO orders VALUES ($1, $2)", order, tokens[0])
            completion.result = {"paid": order}

    job = await pay.enqueue(queue, 7)
    reports: list[queuekit.JobReport] = []
    await queuekit.Worker(queue, tasks, after_job=[reports_into(reports)]).run_until_empty()
    assert await queue.result(job.id, timeout=0) == {"paid": 7}
    assert await orders(conn) == [(7, tokens[0])]
    stored = await pg_backend.get_job(job.id)
    assert stored is not None and stored.lease_token == tokens[0]
    assert [report.outcome for report in reports] == [Outcome.COMPLETED]


async def test_a_cancelled_attempt_rolls_its_writes_back(
    pg_backend: PostgresBackend, conn: asyncpg.Connection
) -> None:
    queue = queuekit.Queue(pg_backend)
    tasks = queuekit.Tasks()
    written, proceed = anyio.Event(), anyio.Event()
    raised: list[BaseException] = []

    @tasks.task()
    async def pay(order: int) -> None:
        try:
            async with queuekit.current_job().transaction(conn):
                await conn.execute("INSERT INTO orders VALUES ($1, 'x')", order)
                written.set()
                # Shielded: the heartbeat may see the cancel first; the fence must catch it anyway.
                with anyio.CancelScope(shield=True):
                    await proceed.wait()
        except LeaseLostError as exc:
            raised.append(exc)
            raise

    job = await pay.enqueue(queue, 7)
    reports: list[queuekit.JobReport] = []
    async with queuekit.Worker(queue, tasks, after_job=[reports_into(reports)]) as worker:
        with anyio.fail_after(30):
            await written.wait()
        cancelled = await queue.cancel(job.id)
        assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
        proceed.set()
        with anyio.fail_after(30):
            while not reports:
                await anyio.sleep(0.01)
        worker.stop()
    assert len(raised) == 1 and isinstance(raised[0], LeaseLostError)
    assert await orders(conn) == []
    assert [(report.outcome, report.error) for report in reports] == [(Outcome.LOST, None)]
    stored = await pg_backend.get_job(job.id)
    assert stored == cancelled  # no second outcome was written over the cancel


async def test_a_rescued_attempt_rolls_back_and_the_next_one_completes(
    pg_backend: PostgresBackend, conn: asyncpg.Connection, dsn: str
) -> None:
    queue = queuekit.Queue(pg_backend)
    tasks = queuekit.Tasks()
    written, proceed = anyio.Event(), anyio.Event()
    settings = {"search_path": pg_backend.schema}

    @tasks.task(max_attempts=2)
    async def pay(order: int) -> str:
        token = queuekit.current_job().lease_token
        # Each attempt on its own connection: the rescued one's may still be open.
        own = await asyncpg.connect(dsn, server_settings=settings)
        try:
            async with queuekit.current_job().transaction(own) as completion:
                await own.execute("INSERT INTO orders VALUES ($1, $2)", order, token)
                if queuekit.current_job().job.attempts == 1:
                    written.set()
                    # Shielded from the rescue's cancel, but bounded: a failed test must not
                    # leave this transaction open (the schema's teardown would wait on it).
                    with anyio.CancelScope(shield=True), anyio.move_on_after(60):
                        await proceed.wait()
                completion.result = token
        finally:
            await own.close()
        return token

    job = await pay.enqueue(queue, 7)
    reports: list[queuekit.JobReport] = []
    async with queuekit.Worker(queue, tasks, after_job=[reports_into(reports)]) as worker:
        with anyio.fail_after(30):
            await written.wait()

        async def rescued() -> bool:
            # The worker's heartbeat may renew the lease between the two calls: then again.
            await conn.execute(
                f"UPDATE {pg_backend.qualified_table} SET lease_expires_at = now() WHERE id = $1",
                job.id,
            )
            return (await pg_backend.rescue()).total == 1

        await eventually(rescued, "the first attempt's lease expired and was rescued")
        proceed.set()
        with anyio.fail_after(30):
            while len(reports) < 2:
                await anyio.sleep(0.01)
        worker.stop()
    outcomes = sorted(report.outcome for report in reports)
    assert outcomes == [Outcome.COMPLETED, Outcome.LOST]
    second_token = await queue.result(job.id, timeout=0)
    assert await orders(conn) == [(7, second_token)]


async def test_a_failure_inside_the_block_rolls_back_and_fails_the_attempt(
    pg_backend: PostgresBackend, conn: asyncpg.Connection
) -> None:
    queue = queuekit.Queue(pg_backend)
    tasks = queuekit.Tasks()

    @tasks.task(max_attempts=1)
    async def pay(order: int) -> None:
        async with queuekit.current_job().transaction(conn):
            await conn.execute("INSERT INTO orders VALUES ($1, 'x')", order)
            raise LookupError("no such customer")

    job = await pay.enqueue(queue, 7)
    await queuekit.Worker(queue, tasks).run_until_empty()
    stored = await pg_backend.get_job(job.id)
    assert stored is not None and stored.status is JobStatus.DEAD
    assert "no such customer" in (stored.last_error or "")
    assert await orders(conn) == []


async def test_bad_connections_and_backends_are_refused(
    pg_backend: PostgresBackend, conn: asyncpg.Connection
) -> None:
    queue = queuekit.Queue(pg_backend)
    job = await queue.enqueue("t")
    [claimed] = await pg_backend.claim({"default": 1}, limit=1, lease=30, worker_id="w")
    context = JobContext(job=claimed, state={}, worker_id="w", queue=queue)
    with pytest.raises(InvalidConnectionError):
        async with context.transaction(object()):
            pass
    async with conn.transaction():
        with pytest.raises(InvalidConnectionError):
            async with context.transaction(conn):
                pass
    async with queuekit.Queue(MemoryBackend()) as memory:
        with pytest.raises(InvalidOptionError):
            async with JobContext(job=claimed, state={}, worker_id="w", queue=memory).transaction(
                conn
            ):
                pass
    stored = await pg_backend.get_job(job.id)
    assert stored is not None and stored.status is JobStatus.RUNNING

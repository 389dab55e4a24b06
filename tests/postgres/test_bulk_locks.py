"""Bulk operations take the jobs another statement holds when they come to them (a heartbeat,
a claim, a caller's transaction): they wait for each such row, as a single operation does."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta

import anyio
import asyncpg
import pytest

import queuekit
from queuekit import Job, JobStatus, Queue
from queuekit.backends.postgres import PostgresBackend

from ..conformance.helpers import claim
from ..waiting import eventually

Setup = Callable[[Queue], Awaitable[list[Job]]]


async def _running(queue: Queue) -> list[Job]:
    await queue.enqueue_many(queuekit.new_job("t") for _ in range(3))
    return await claim(queue.backend, 3)


async def _dead(queue: Queue) -> list[Job]:
    for running in await _running(queue):
        await queue.backend.fail(running.attempt, "boom", retry_in=None)
    return await _stored(queue)


async def _delayed(queue: Queue) -> list[Job]:
    return await queue.enqueue_many(queuekit.new_job("t", delay=3600) for _ in range(3))


async def _completed(queue: Queue) -> list[Job]:
    for running in await _running(queue):
        await queue.backend.complete(running.attempt)
    return await _stored(queue)


async def _stored(queue: Queue) -> list[Job]:
    return (await queue.list_jobs(queue="default")).jobs


def _cancelled(job: Job | None) -> bool:
    return job is not None and job.status is JobStatus.CANCELLED


def _replayed(job: Job | None) -> bool:
    return job is not None and job.status is JobStatus.PENDING and job.attempts == 0


def _due(job: Job | None) -> bool:
    return job is not None and job.scheduled_at < job.created_at + timedelta(minutes=1)


def _deleted(job: Job | None) -> bool:
    return job is None


Hold = Callable[[asyncpg.Connection], Awaitable[object]]


async def _bulk_while_held(
    backend: PostgresBackend, dsn: str, hold: Hold, bulk: Callable[[], Awaitable[int]]
) -> int:
    """`bulk()` while `hold` keeps a row in an open transaction, committed once the bulk
    operation waits for it (or has finished without waiting); how many jobs it changed."""
    holder, watcher = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        held = holder.transaction()
        await held.start()
        await hold(holder)
        changed: list[int] = []

        async def run_bulk() -> None:
            changed.append(await bulk())

        async def finished_or_waiting() -> bool:
            return bool(changed) or await watcher.fetchval(
                "SELECT EXISTS (SELECT FROM pg_stat_activity"
                " WHERE $1 = ANY(pg_blocking_pids(pid)))",
                holder.get_server_pid(),
            )

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_bulk)
            await eventually(finished_or_waiting, "the bulk operation finished or waited")
            await held.commit()
        return changed[0]
    finally:
        await holder.close()
        await watcher.close()


@pytest.mark.parametrize(
    ("setup", "bulk", "done"),
    [
        (_running, "cancel_all", _cancelled),
        (_dead, "replay_all", _replayed),
        (_delayed, "run_now_all", _due),
        (_completed, "delete_all", _deleted),
    ],
)
async def test_a_bulk_operation_waits_for_a_row_another_statement_holds(
    pg_backend: PostgresBackend,
    dsn: str,
    setup: Setup,
    bulk: str,
    done: Callable[[Job | None], bool],
) -> None:
    queue = queuekit.Queue(pg_backend)
    jobs = await setup(queue)

    async def beat(holder: asyncpg.Connection) -> None:
        # What a heartbeat of one of the jobs does, its transaction left open.
        await holder.execute(
            f"UPDATE {pg_backend.qualified_table} "
            "SET lease_expires_at = lease_expires_at WHERE id = $1",
            jobs[1].id,
        )

    assert await _bulk_while_held(pg_backend, dsn, beat, getattr(queue, bulk)) == 3
    for job in jobs:
        assert done(await pg_backend.get_job(job.id)), job.id


async def test_a_job_that_left_the_status_while_the_bulk_waited_is_left_alone(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    queue = queuekit.Queue(pg_backend)
    first, *others = await _running(queue)

    async def complete(holder: asyncpg.Connection) -> None:
        assert await pg_backend.complete_in_transaction(holder, first.attempt, None)

    cancel_running = functools.partial(queue.cancel_all, status=JobStatus.RUNNING)
    assert await _bulk_while_held(pg_backend, dsn, complete, cancel_running) == 2
    completed = await pg_backend.get_job(first.id)
    assert completed is not None and completed.status is JobStatus.COMPLETED
    for job in others:
        assert _cancelled(await pg_backend.get_job(job.id)), job.id

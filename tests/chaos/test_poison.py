"""A poison job, whose handler takes its worker process down every time, ends dead after its
attempts with "lease expired", while the jobs beside it complete; the test restarts workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

import queuekit
from queuekit import JobStatus, Queue

from ..setups import BackendSetup
from .pool import Pool
from .run import read_executions

pytestmark = pytest.mark.slow


@pytest.fixture
async def durable_queue(durable_setup: BackendSetup) -> AsyncIterator[Queue]:
    async with queuekit.connect(durable_setup.make()) as queue:
        yield queue


async def test_poison_job_ends_dead_and_holds_nothing_up(
    durable_setup: BackendSetup, durable_queue: Queue, tmp_path: Path
) -> None:
    assert durable_setup.url is not None
    record = tmp_path / "executions.log"
    poison = await durable_queue.enqueue("poison", max_attempts=3, priority=30)
    others = await durable_queue.enqueue_many(
        queuekit.new_job("work", {"seconds": 0.05}, max_attempts=20) for _ in range(40)
    )
    pool = Pool(durable_setup.url, record, tmp_path / "workers.log", lease=1.0, concurrency=5)
    pool.size = 2
    pool.start()
    errors_seen: set[str | None] = set()
    try:
        with anyio.fail_after(60):
            while True:
                await anyio.sleep(0.1)
                pool.replace_exited()
                job = await durable_queue.get_job(poison.id)
                if job.status == JobStatus.FAILED:
                    errors_seen.add(job.last_error)
                stats = await durable_queue.stats()
                if job.status == JobStatus.DEAD and stats.completed == len(others):
                    break
    finally:
        pool.stop()
    job = await durable_queue.get_job(poison.id)
    assert job.status == JobStatus.DEAD and job.attempts == 3
    assert job.last_error == "lease expired"
    assert errors_seen <= {"lease expired"}
    assert len(read_executions(record)[poison.id]) == 3
    assert pool.crashed == 3, "each attempt took one worker process down"
    for other in others:
        assert (await durable_queue.get_job(other.id)).status == JobStatus.COMPLETED

"""`Worker(queue, tasks, schedules=[...])`: one process that fires schedules and runs them."""

from __future__ import annotations

import logging
from datetime import timedelta

import anyio
import pytest

import queuekit
from queuekit import JobStatus, Schedule, Worker

from .helpers import all_jobs, assert_consecutive_or_stood_in, fired_slots

tasks = queuekit.Tasks()
ran: list[int] = []


@tasks.task()
async def tick(n: int) -> int:
    ran.append(n)
    return n


async def test_a_worker_fires_its_schedules_and_runs_their_jobs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="queuekit.scheduler")
    period = timedelta(seconds=0.1)
    schedule = Schedule.every(period).job(tick, {"n": 7})
    ran.clear()
    async with queuekit.connect("memory://") as queue:
        worker = Worker(queue, tasks, schedules=[schedule], poll_interval=0.05)
        assert worker.scheduler is not None and not worker.scheduler.running
        async with worker:
            with anyio.fail_after(10):
                while len(ran) < 4:
                    await anyio.sleep(0.02)
            assert worker.scheduler.running
        assert not worker.scheduler.running  # stopped with the worker
        jobs = await all_jobs(queue)

    assert_consecutive_or_stood_in(fired_slots(schedule, jobs), period, caplog)
    assert ran == [7] * len(ran)
    completed = [job for job in jobs if job.status == JobStatus.COMPLETED]
    assert len(completed) >= 4 and all(job.result == 7 for job in completed)


async def test_a_worker_without_schedules_has_no_scheduler() -> None:
    async with queuekit.connect("memory://") as queue:
        assert Worker(queue, tasks).scheduler is None

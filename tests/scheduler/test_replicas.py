"""Five schedulers on one backend, as tasks and as OS processes: each slot gets one job."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

import queuekit
from queuekit import Queue, Schedule, Scheduler, Worker
from queuekit.scheduler import ManualClock

from ..setups import BackendSetup
from . import process_scheduler
from .helpers import all_jobs, assert_consecutive, at, complete_all, fired_slots

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = 5


async def test_five_schedulers_with_skewed_clocks_fire_each_slot_once(
    backend_setup: BackendSetup,
) -> None:
    """Pairs of schedulers wake at the same instant and race; the others lag one or two slots
    behind, reaching each slot after its job has already run (and freed its unique key)."""
    period = 10
    steps = 30
    schedule = Schedule.every(period).job("tick")
    clocks = [ManualClock(at(1 - period * (i // 2))) for i in range(REPLICAS)]
    queues = [Queue(backend_setup.make()) for _ in range(REPLICAS)]
    schedulers = [
        Scheduler(queue, [schedule], clock=clock)
        for queue, clock in zip(queues, clocks, strict=True)
    ]
    async with queues[0]:
        for queue in queues[1:]:
            await queue.open()
        try:
            async with anyio.create_task_group() as group:
                for scheduler in schedulers:
                    group.start_soon(scheduler.run)
                for _ in range(steps):
                    for clock in clocks:
                        await clock.wait_for_sleepers(1)
                    await complete_all(queues[0].backend)
                    for clock in clocks:
                        clock.advance(period)
                for clock in clocks:
                    await clock.wait_for_sleepers(1)
                group.cancel_scope.cancel()
            jobs = await all_jobs(queues[0])
        finally:
            for queue in queues[1:]:
                await queue.close()

    slots = fired_slots(schedule, jobs)
    assert slots == [at(period * n) for n in range(-2, steps + 1)]
    assert_consecutive(slots, timedelta(seconds=period))
    fired_here = sum(s.state(schedule.name).fired for s in schedulers)
    assert fired_here >= len(slots)
    states = [s.state(schedule.name) for s in schedulers]
    assert all(state.last_error is None and state.skipped == () for state in states)


async def test_five_schedulers_in_real_time_fire_each_slot_once(
    backend_setup: BackendSetup,
) -> None:
    period = timedelta(seconds=0.2)
    schedule = Schedule.every(period).job(process_scheduler.tick)
    queues = [Queue(backend_setup.make()) for _ in range(REPLICAS)]
    async with queues[0]:
        for queue in queues[1:]:
            await queue.open()
        try:
            schedulers = [Scheduler(queue, [schedule]) for queue in queues]
            worker = Worker(queues[0], process_scheduler.tasks, poll_interval=0.05)
            async with worker, anyio.create_task_group() as group:
                for scheduler in schedulers:
                    group.start_soon(scheduler.run)
                await anyio.sleep(1.0)
                group.cancel_scope.cancel()
            jobs = await all_jobs(queues[0])
        finally:
            for queue in queues[1:]:
                await queue.close()

    slots = fired_slots(schedule, jobs)
    assert len(slots) >= 4
    assert_consecutive(slots, period)
    assert sum(job.status == queuekit.JobStatus.COMPLETED for job in jobs) >= len(slots) // 2


@pytest.mark.slow
async def test_five_processes_fire_each_slot_once(durable_setup: BackendSetup) -> None:
    assert durable_setup.url is not None
    period = 0.2
    start_at = time.time() + 1.0  # after every process has started and connected
    end_at = start_at + 1.6
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.scheduler.process_scheduler",
                durable_setup.url,
                str(period),
                str(start_at),
                str(end_at),
            ],
            cwd=ROOT,
            env=env,
        )
        for _ in range(REPLICAS)
    ]
    try:
        with anyio.fail_after(30):
            while any(process.poll() is None for process in processes):
                await anyio.sleep(0.05)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [process.returncode for process in processes] == [0] * REPLICAS

    async with queuekit.connect(durable_setup.make()) as queue:
        jobs = await all_jobs(queue)
    schedule = process_scheduler.schedule(period)
    slots = fired_slots(schedule, jobs)
    assert_consecutive(slots, timedelta(seconds=period))
    assert len(slots) >= 5, f"{len(slots)} slots fired in 1.6 s"
    assert sum(job.status == queuekit.JobStatus.COMPLETED for job in jobs) >= len(slots) // 2

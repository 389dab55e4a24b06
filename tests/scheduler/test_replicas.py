"""Five schedulers on one backend, as tasks and as OS processes: each slot gets one job."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

import queuekit
from queuekit import Queue, Schedule, Scheduler, Worker
from queuekit.testing import ManualClock

from ..setups import BackendSetup
from ..waiting import eventually
from . import process_scheduler
from .helpers import (
    all_jobs,
    assert_consecutive,
    assert_consecutive_or_stood_in,
    at,
    fired_slots,
    race,
)

ROOT = Path(__file__).resolve().parents[2]
COMPLETED = queuekit.JobStatus.COMPLETED
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
    schedulers, jobs = await race(backend_setup.make, schedule, clocks, period=period, steps=steps)

    slots = fired_slots(schedule, jobs)
    assert slots == [at(period * n) for n in range(-2, steps + 1)]
    assert_consecutive(slots, timedelta(seconds=period))
    fired_here = sum(s.state(schedule.name).fired for s in schedulers)
    assert fired_here >= len(slots)
    states = [s.state(schedule.name) for s in schedulers]
    assert all(state.last_error is None and state.skipped == () for state in states)


async def test_five_schedulers_in_real_time_fire_each_slot_once(
    backend_setup: BackendSetup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="queuekit.scheduler")
    period = timedelta(seconds=0.2)
    schedule = Schedule.every(period).job(process_scheduler.tick)
    queues = [Queue(backend_setup.make()) for _ in range(REPLICAS)]
    async with queues[0]:
        for queue in queues[1:]:
            await queue.open()
        try:
            schedulers = [Scheduler(queue, [schedule]) for queue in queues]
            worker = Worker(queues[0], process_scheduler.tasks, poll_interval=0.05)

            async def four_run() -> bool:
                jobs = await all_jobs(queues[0])
                return sum(job.status == COMPLETED for job in jobs) >= 4

            async with worker, anyio.create_task_group() as group:
                for scheduler in schedulers:
                    group.start_soon(scheduler.run)
                await eventually(four_run, "four slots fired and run")
                group.cancel_scope.cancel()
            jobs = await all_jobs(queues[0])
        finally:
            for queue in queues[1:]:
                await queue.close()

    slots = fired_slots(schedule, jobs)
    assert len(slots) >= 4
    assert_consecutive_or_stood_in(slots, period, caplog)


@pytest.mark.slow
async def test_five_processes_fire_each_slot_once(
    durable_setup: BackendSetup, tmp_path: Path
) -> None:
    """Once all five processes run (however long they took to start), slots keep firing, each
    with one job; the processes stop when the test has seen enough slots run."""
    assert durable_setup.url is not None
    period = 0.5
    schedule = process_scheduler.schedule(period)
    ready = [tmp_path / f"ready-{n}" for n in range(REPLICAS)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.scheduler.process_scheduler", durable_setup.url]
    processes = [
        subprocess.Popen(
            [*command, str(period), str(path)], cwd=ROOT, env=env, stdin=subprocess.PIPE
        )
        for path in ready
    ]
    try:
        async with queuekit.connect(durable_setup.make()) as queue:

            def all_running() -> bool:
                exited = [p.returncode for p in processes if p.poll() is not None]
                assert not exited, f"a scheduler process exited: {exited}"
                return all(path.exists() for path in ready)

            async def completed_slots() -> int:
                jobs = await all_jobs(queue)
                return len(fired_slots(schedule, [j for j in jobs if j.status == COMPLETED]))

            await eventually(all_running, "five scheduler processes running")
            before = await completed_slots()

            async def five_more() -> bool:
                return await completed_slots() >= before + 5

            await eventually(five_more, "five slots fired and run by the five processes")
        for process in processes:
            assert process.stdin is not None
            process.stdin.close()
        await eventually(lambda: all(p.poll() is not None for p in processes), "processes exit")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [process.returncode for process in processes] == [0] * REPLICAS

    async with queuekit.connect(durable_setup.make()) as queue:
        jobs = await all_jobs(queue)
    slots = fired_slots(schedule, jobs)
    assert_consecutive(slots, timedelta(seconds=period))
    assert sum(job.status == COMPLETED for job in jobs) >= 5

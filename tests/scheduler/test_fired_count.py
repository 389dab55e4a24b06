"""`fired` counts only the jobs a scheduler stored: replicas racing for every slot at the same
instant report, between them, exactly the slots stored."""

from __future__ import annotations

import anyio
import pytest

from queuekit import Queue, Schedule, Scheduler
from queuekit.scheduler import SCHEDULER_HEADER, Overlap
from queuekit.testing import ManualClock

from ..setups import BackendSetup
from .helpers import all_jobs, at, complete_all, fired_slots

REPLICAS = 5
STEPS = 12
PERIOD = 10


@pytest.mark.parametrize("overlap", [Overlap.ALLOW, Overlap.SKIP])
async def test_racing_replicas_count_each_stored_slot_once(
    backend_setup: BackendSetup, overlap: Overlap
) -> None:
    schedule = Schedule.every(PERIOD, overlap=overlap).job("tick")
    clocks = [ManualClock(at(1)) for _ in range(REPLICAS)]
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
                for _ in range(STEPS):
                    for clock in clocks:
                        await clock.wait_for_sleepers(1)
                    await complete_all(queues[0].backend)
                    for clock in clocks:  # every replica wakes at the same instant and races
                        clock.advance(PERIOD)
                for clock in clocks:
                    await clock.wait_for_sleepers(1)
                group.cancel_scope.cancel()
            jobs = await all_jobs(queues[0])
        finally:
            for queue in queues[1:]:
                await queue.close()

    slots = fired_slots(schedule, jobs)
    assert len(slots) == STEPS + 1
    states = [s.state(schedule.name) for s in schedulers]
    assert sum(state.fired for state in states) == len(slots)
    assert all(state.last_error is None and state.skipped == () for state in states)
    stored_by = {job.headers[SCHEDULER_HEADER] for job in jobs}
    assert stored_by <= {s.scheduler_id for s in schedulers}
    for scheduler, state in zip(schedulers, states, strict=True):
        mine = sum(job.headers[SCHEDULER_HEADER] == scheduler.scheduler_id for job in jobs)
        assert state.fired == mine

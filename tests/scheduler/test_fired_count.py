"""`fired` counts only the jobs a scheduler stored: replicas racing for every slot at the same
instant report, between them, exactly the slots stored."""

from __future__ import annotations

import pytest

from queuekit import Schedule
from queuekit.scheduler import SCHEDULER_HEADER, Overlap
from queuekit.testing import ManualClock

from ..setups import BackendSetup
from .helpers import at, fired_slots, race

REPLICAS = 5
STEPS = 12
PERIOD = 10


@pytest.mark.parametrize("overlap", [Overlap.ALLOW, Overlap.SKIP])
async def test_racing_replicas_count_each_stored_slot_once(
    backend_setup: BackendSetup, overlap: Overlap
) -> None:
    schedule = Schedule.every(PERIOD, overlap=overlap).job("tick")
    clocks = [ManualClock(at(1)) for _ in range(REPLICAS)]
    schedulers, jobs = await race(backend_setup.make, schedule, clocks, period=PERIOD, steps=STEPS)

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

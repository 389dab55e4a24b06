"""The scheduler on every backend, with an injected clock: on time, restarts, missed slots,
overlap, outages and shutdown."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

import queuekit
from queuekit import (
    BackendUnavailableError,
    InvalidOptionError,
    JobStatus,
    Queue,
    Schedule,
    Scheduler,
)
from queuekit.backends.memory import MemoryBackend
from queuekit.scheduler import SkipReason
from queuekit.testing import ManualClock

from .helpers import all_jobs, at, complete_all, fired_slots


async def run_for(scheduler: Scheduler, clock: ManualClock, steps: int, step: float) -> None:
    """Start `scheduler`, then move its clock `steps` times by `step` seconds."""
    count = len(scheduler.schedules)
    async with scheduler:
        await clock.wait_for_sleepers(count)
        for _ in range(steps):
            clock.advance(step)
            await clock.wait_for_sleepers(count)


async def test_fires_each_slot_once_on_time(queue: Queue) -> None:
    clock = ManualClock(at(0.5))
    scheduler = Scheduler(queue, clock=clock)
    schedule = scheduler.every(10).job("tick", {"n": 1}, priority=20, max_attempts=5)
    await run_for(scheduler, clock, steps=5, step=10)

    jobs = await all_jobs(queue)
    assert fired_slots(schedule, jobs) == [at(10 * n) for n in range(6)]
    for job in jobs:
        assert (job.type, job.payload, job.priority, job.max_attempts) == ("tick", {"n": 1}, 20, 5)
        assert job.status == JobStatus.PENDING and job.unique_key == job.id
    state = scheduler.state(schedule.name)
    assert state.fired == 6 and state.skipped == () and state.last_error is None
    assert state.last_fire is not None and state.last_fire.slot == at(50)
    assert state.last_fire.by_this_scheduler and state.last_fire.job_id == schedule.job_id(at(50))
    assert state.next_slot == at(60) == state.next_run


async def test_a_restart_or_a_late_joiner_does_not_fire_a_slot_again(queue: Queue) -> None:
    clock = ManualClock(at(1))
    schedule = Schedule.every(10).job("tick")
    first = Scheduler(queue, [schedule], clock=clock)
    await run_for(first, clock, steps=2, step=10)
    await complete_all(queue.backend)  # finished jobs free their unique keys: the id still holds
    clock.advance(5)
    second = Scheduler(queue, [schedule], clock=clock)
    await run_for(second, clock, steps=0, step=0)

    assert fired_slots(schedule, await all_jobs(queue)) == [at(0), at(10), at(20)]
    state = second.state(schedule.name)
    assert state.fired == 0
    assert state.last_fire is not None and state.last_fire.slot == at(20)
    assert not state.last_fire.by_this_scheduler


@pytest.mark.parametrize("completed", [False, True])
async def test_downtime_runs_once_for_the_missed_slots(queue: Queue, completed: bool) -> None:
    clock = ManualClock(at(1))
    schedule = Schedule.every(10, grace=2).job("tick")
    await run_for(Scheduler(queue, [schedule], clock=clock), clock, steps=2, step=10)
    if completed:
        await complete_all(queue.backend)
    clock.set(at(125))  # down from 21 s to 125 s: slots 30 to 120 passed unfired
    restarted = Scheduler(queue, [schedule], clock=clock)
    await run_for(restarted, clock, steps=1, step=10)

    assert fired_slots(schedule, await all_jobs(queue)) == [at(0), at(10), at(20), at(120), at(130)]
    state = restarted.state(schedule.name)
    assert state.fired == 2 and state.skipped == ()
    assert state.last_fire is not None and state.last_fire.slot == at(130)


async def test_downtime_with_skip_fires_nothing_for_the_missed_slots(queue: Queue) -> None:
    clock = ManualClock(at(1))
    schedule = Schedule.every(10, grace=2, missed="skip").job("tick")
    await run_for(Scheduler(queue, [schedule], clock=clock), clock, steps=2, step=10)
    clock.set(at(125))
    restarted = Scheduler(queue, [schedule], clock=clock)
    async with restarted:
        await clock.wait_for_sleepers(1)
        clock.set(at(131))  # on time for slot 130
        await clock.wait_for_sleepers(1)
        clock.set(at(145))  # too late for slot 140: skipped too
        await clock.wait_for_sleepers(1)

    assert fired_slots(schedule, await all_jobs(queue)) == [at(0), at(10), at(20), at(130)]
    state = restarted.state(schedule.name)
    assert [(s.first, s.last, s.count, s.reason) for s in state.skipped] == [
        (at(30), at(120), 10, SkipReason.MISSED),
        (at(140), at(140), 1, SkipReason.MISSED),
    ]
    assert state.skipped_slots == 11 and state.fired == 1


async def test_a_stalled_scheduler_never_bursts(queue: Queue) -> None:
    """The clock jumps (a suspended laptop, a stalled loop): one job, not hundreds."""
    clock = ManualClock(at(1))
    run_once = Schedule.every(1, name="run-once").job("tick")
    skip = Schedule.every(1, name="skip", missed="skip").job("tick")
    scheduler = Scheduler(queue, [run_once, skip], clock=clock)
    async with scheduler:
        await clock.wait_for_sleepers(2)
        clock.advance(3600)  # on time for slot 3601 (within grace): it fires under both
        await clock.wait_for_sleepers(2)
        once, skipped = scheduler.state("run-once"), scheduler.state("skip")

    jobs = await all_jobs(queue)
    assert fired_slots(run_once, jobs) == [at(1), at(3601)]
    assert fired_slots(skip, jobs) == [at(1), at(3601)]
    assert once.last_fire is not None and once.last_fire.coalesced == 3599
    assert [(s.first, s.last, s.count) for s in skipped.skipped] == [(at(2), at(3600), 3599)]


async def test_a_new_schedule_does_not_fire_a_slot_that_passed_long_ago(queue: Queue) -> None:
    clock = ManualClock(datetime(2024, 5, 1, 14, tzinfo=UTC))
    scheduler = Scheduler(queue, clock=clock)
    nightly = scheduler.cron("0 3 * * *", tz="Europe/Berlin").job("report")
    async with scheduler:
        await clock.wait_for_sleepers(1)
        assert await all_jobs(queue) == []
        assert scheduler.state(nightly.name).next_run == datetime(2024, 5, 2, 1, tzinfo=UTC)
        clock.set(datetime(2024, 5, 2, 1, 0, 0, 300_000, tzinfo=UTC))
        await clock.wait_for_sleepers(1)
    assert fired_slots(nightly, await all_jobs(queue)) == [datetime(2024, 5, 2, 1, tzinfo=UTC)]


async def test_a_new_schedule_fires_the_current_slot_within_grace(queue: Queue) -> None:
    clock = ManualClock(datetime(2024, 5, 2, 1, 0, 30, tzinfo=UTC))
    scheduler = Scheduler(queue, clock=clock)
    nightly = scheduler.cron("0 3 * * *", tz="Europe/Berlin").job("report")
    await run_for(scheduler, clock, steps=0, step=0)
    assert fired_slots(nightly, await all_jobs(queue)) == [datetime(2024, 5, 2, 1, tzinfo=UTC)]


async def test_overlap_skip_waits_for_the_previous_job(queue: Queue) -> None:
    clock = ManualClock(at(1))
    scheduler = Scheduler(queue, clock=clock)
    schedule = scheduler.every(10, overlap="skip").job("slow")
    async with scheduler:
        await clock.wait_for_sleepers(1)
        clock.advance(10)  # slot 10: the job of slot 0 is still pending
        await clock.wait_for_sleepers(1)
        (claimed,) = await queue.backend.claim({"default": 1}, limit=1, lease=30, worker_id="w")
        clock.advance(10)  # slot 20: it is running
        await clock.wait_for_sleepers(1)
        await queue.backend.complete(claimed.attempt)
        clock.advance(10)  # slot 30: it has finished
        await clock.wait_for_sleepers(1)
        state = scheduler.state(schedule.name)

    jobs = await all_jobs(queue)
    assert fired_slots(schedule, jobs) == [at(0), at(30)]
    assert {job.unique_key for job in jobs} == {f"schedule:{schedule.name}"}
    assert [(s.last, s.reason, s.job_id) for s in state.skipped] == [
        (at(10), SkipReason.OVERLAP, schedule.job_id(at(0))),
        (at(20), SkipReason.OVERLAP, schedule.job_id(at(0))),
    ]
    assert state.skipped_slots == 2 and state.fired == 2


async def test_overlap_allow_enqueues_anyway(queue: Queue) -> None:
    clock = ManualClock(at(1))
    scheduler = Scheduler(queue, clock=clock)
    schedule = scheduler.every(10).job("slow")
    await run_for(scheduler, clock, steps=3, step=10)
    jobs = await all_jobs(queue)
    assert fired_slots(schedule, jobs) == [at(0), at(10), at(20), at(30)]
    assert {job.status for job in jobs} == {JobStatus.PENDING}


async def test_a_finished_jobs_id_still_marks_its_slot_as_fired(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow replica whose check raced the first replica's job to completion."""
    schedule = Schedule.every(10).job("tick")
    clock = ManualClock(at(1))
    await run_for(Scheduler(queue, [schedule], clock=clock), clock, steps=0, step=0)
    assert await complete_all(queue.backend) == 1

    # The backend itself refuses the same id once the job is done and its unique key is free.
    with pytest.raises(InvalidOptionError):
        await queue.enqueue(
            "tick", id=schedule.job_id(at(0)), unique_key=schedule.unique_key(at(0))
        )

    real_get_job = queue.backend.get_job
    looked: list[str] = []

    async def blind_once(job_id: str) -> Any:
        looked.append(job_id)
        return None if len(looked) == 1 else await real_get_job(job_id)

    monkeypatch.setattr(queue.backend, "get_job", blind_once)
    slow = Scheduler(queue, [schedule], clock=clock)
    async with slow:
        await clock.wait_for_sleepers(1)
    monkeypatch.undo()
    assert fired_slots(schedule, await all_jobs(queue)) == [at(0)]
    state = slow.state(schedule.name)
    assert state.fired == 0 and state.last_fire is not None
    assert state.last_fire.slot == at(0) and not state.last_fire.by_this_scheduler


async def test_a_backend_outage_is_logged_retried_and_survived(
    queue: Queue, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(at(1))
    scheduler = Scheduler(queue, clock=clock, retry_interval=1, max_retry_interval=4)
    schedule = scheduler.every(10).job("tick")

    async def down(*args: object, **kwargs: object) -> Any:
        raise BackendUnavailableError("connection refused")

    caplog.set_level(logging.WARNING, logger="queuekit.scheduler")
    async with scheduler:
        await clock.wait_for_sleepers(1)
        monkeypatch.setattr(queue.backend, "get_job", down)
        monkeypatch.setattr(queue.backend, "enqueue", down)
        clock.advance(10)  # slot 10 comes during the outage
        await clock.wait_for_sleepers(1)
        delays = []
        for _ in range(4):  # retried with backoff: 1, 2, 4, 4 s
            (deadline,) = clock.sleeping
            delays.append((deadline - clock.now()).total_seconds())
            clock.set(deadline)
            await clock.wait_for_sleepers(1)
        assert delays == [1, 2, 4, 4]
        state = scheduler.state(schedule.name)
        assert state.last_error == "BackendUnavailableError: connection refused"
        monkeypatch.undo()
        clock.advance(4)  # back at 26 s: slot 20 fires, standing in for slot 10 too
        await clock.wait_for_sleepers(1)
        state = scheduler.state(schedule.name)
        assert state.last_error is None
        assert state.last_fire is not None and state.last_fire.coalesced == 1
        clock.advance(10)
        await clock.wait_for_sleepers(1)

    assert fired_slots(schedule, await all_jobs(queue)) == [at(0), at(20), at(30)]
    warnings = [r for r in caplog.records if "backend unavailable" in r.getMessage()]
    assert len(warnings) == 5
    assert all(r.schedule == schedule.name for r in warnings)  # type: ignore[attr-defined]


async def test_shutdown_is_clean_and_the_scheduler_can_start_again(queue: Queue) -> None:
    clock = ManualClock(at(1))
    scheduler = Scheduler(queue, clock=clock)
    tick = scheduler.every(10).job("tick")
    async with scheduler:
        assert scheduler.running
        await clock.wait_for_sleepers(1)
        with pytest.raises(RuntimeError, match="already running"):
            await scheduler.__aenter__()
    assert not scheduler.running and clock.sleeping == []
    assert len(await all_jobs(queue)) == 1

    clock.advance(10)
    async with scheduler:
        await clock.wait_for_sleepers(1)
        late = scheduler.cron("*/15 * * * * *", name="added-late").job("other")
        await clock.wait_for_sleepers(2)
        scheduler.remove("added-late")
        clock.advance(10)
        await clock.wait_for_sleepers(1)
    jobs = await all_jobs(queue)
    assert len(jobs) == 4 and fired_slots(late, jobs) == [at(0)]
    assert fired_slots(tick, jobs) == [at(0), at(10), at(20)]


async def test_run_until_cancelled() -> None:
    queue = queuekit.connect("memory://")
    clock = ManualClock(at(1))
    scheduler = Scheduler(queue, clock=clock)
    schedule = scheduler.every(10).job("tick")
    async with queue, anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        await clock.wait_for_sleepers(1)
        assert scheduler.running
        group.cancel_scope.cancel()
    assert not scheduler.running
    async with queue:
        assert fired_slots(schedule, await all_jobs(queue)) == [at(0)]


async def test_jitter_delays_each_slot_by_its_own_offset(queue: Queue) -> None:
    clock = ManualClock(at(0.001))
    scheduler = Scheduler(queue, clock=clock)
    schedule = scheduler.every(10, jitter=8, grace=0).job("tick")
    async with scheduler:
        await clock.wait_for_sleepers(1)
        assert await all_jobs(queue) == []  # slot -10 is past its grace; slot 0 fires later
        for slot in (at(0), at(10), at(20)):
            (deadline,) = clock.sleeping
            assert deadline == schedule.fire_time(slot) and deadline > slot
            clock.set(deadline)
            await clock.wait_for_sleepers(1)
            assert fired_slots(schedule, await all_jobs(queue))[-1] == slot


async def test_a_cron_job_across_the_spring_forward_night() -> None:
    """02:30 in Berlin on 2024-03-31 does not exist: it fires once, at 03:00 CEST."""
    queue = queuekit.Queue(MemoryBackend())
    clock = ManualClock(datetime(2024, 3, 30, 22, tzinfo=UTC))
    scheduler = Scheduler(queue, clock=clock)
    nightly = scheduler.cron("30 2 * * *", tz="Europe/Berlin").job("report")
    async with queue:
        await run_for(scheduler, clock, steps=4 * 8, step=15 * 60)  # to 06:00 UTC
        assert fired_slots(nightly, await all_jobs(queue)) == [datetime(2024, 3, 31, 1, tzinfo=UTC)]

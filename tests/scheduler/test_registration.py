"""Building schedules: the fluent builder, the `Schedule` value, names and typed errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import queuekit
from queuekit import (
    InvalidNameError,
    InvalidOptionError,
    InvalidPayloadError,
    InvalidScheduleError,
    Missed,
    Overlap,
    PayloadTooLargeError,
    Schedule,
    Scheduler,
    ValidationError,
    Worker,
)
from queuekit.backends.memory import MemoryBackend
from queuekit.scheduler.triggers import Cron, Interval

tasks = queuekit.Tasks()


@tasks.task(queue="reports", priority=queuekit.Priority.HIGH, max_attempts=5)
async def nightly_report(day_offset: int = 0) -> None:
    return None


def make_queue(**options: Any) -> queuekit.Queue:
    return queuekit.Queue(MemoryBackend(), **options)


def test_builder_makes_a_schedule_value() -> None:
    schedule = Schedule.every(timedelta(minutes=5)).job("cleanup", {"days": 30})
    assert schedule.name == "cleanup:every:300s"
    assert schedule.trigger == Interval(timedelta(minutes=5))
    assert (schedule.type, schedule.payload, schedule.queue) == ("cleanup", {"days": 30}, "default")
    assert schedule.missed is Missed.RUN_ONCE and schedule.overlap is Overlap.ALLOW
    # A value: equal when built alike, hashable, and immutable.
    again = Schedule.every(300).job("cleanup", {"days": 30})
    assert schedule == again and hash(schedule) == hash(again)
    with pytest.raises(AttributeError):
        schedule.name = "other"  # type: ignore[misc]


def test_the_payload_is_frozen_at_registration() -> None:
    payload = {"days": 30}
    schedule = Schedule.every(60).job("cleanup", payload)
    payload["days"] = 1
    schedule.payload["days"] = 2
    assert schedule.payload == {"days": 30}


def test_default_names_derive_from_type_and_spec() -> None:
    assert Schedule.every(0.25).job("tick").name == "tick:every:0.25s"
    assert Schedule.cron("0 3 * * *").job("report").name == "report:cron:0_3_x_x_x"
    berlin = Schedule.cron("*/15 9-17 * * mon-fri", tz="Europe/Berlin").job("report")
    assert berlin.name == "report:cron:x.15_9-17_x_x_mon-fri:Europe.Berlin"
    start = datetime(2024, 1, 1, 0, 15, tzinfo=UTC)
    assert (
        Schedule.every(3600, start=start).job("t").name == "t:every:3600s:from:2024-01-01T00:15:00Z"
    )
    long = Schedule.every(60).job("t" * 120)
    assert len(long.name) <= 128
    assert Schedule.every(60, name="my-cleanup").job("cleanup").name == "my-cleanup"


def test_a_task_brings_its_name_queue_and_options() -> None:
    schedule = Schedule.cron("0 3 * * *").job(nightly_report, {"day_offset": 1})
    assert (schedule.type, schedule.queue, schedule.priority, schedule.max_attempts) == (
        "nightly_report",
        "reports",
        queuekit.Priority.HIGH,
        5,
    )
    assert Schedule.cron("0 3 * * *").job(nightly_report, queue="other").queue == "other"
    with pytest.raises(InvalidOptionError, match="bad payload for task"):
        Schedule.cron("0 3 * * *").job(nightly_report, {"nope": 1})


def test_scheduler_registers_and_rejects_duplicate_names() -> None:
    scheduler = Scheduler(make_queue())
    scheduler.every(timedelta(minutes=5)).job("cleanup", {"days": 30})
    scheduler.cron("0 3 * * *", tz="Europe/Berlin").job("nightly_report", {})
    with pytest.raises(InvalidScheduleError, match="already registered"):
        scheduler.every(300).job("cleanup", {"days": 7})
    scheduler.every(300, name="cleanup-weekly").job("cleanup", {"days": 7})
    assert [state.name for state in scheduler.schedules] == [
        "cleanup:every:300s",
        "nightly_report:cron:0_3_x_x_x:Europe.Berlin",
        "cleanup-weekly",
    ]
    scheduler.remove("cleanup-weekly")
    assert len(scheduler.schedules) == 2
    with pytest.raises(KeyError):
        scheduler.remove("cleanup-weekly")


async def test_a_list_of_schedules_is_passed_around() -> None:
    schedules = [
        Schedule.every(60).job("a"),
        Schedule.cron("@daily").job("b"),
    ]
    assert [s.name for s in Scheduler(make_queue(), schedules).schedules] == [
        "a:every:60s",
        "b:cron:daily",
    ]
    with pytest.raises(InvalidScheduleError, match="already registered"):
        Scheduler(make_queue(), [schedules[0], schedules[0]])
    with pytest.raises(InvalidScheduleError, match="already registered"):
        Worker(make_queue(), tasks, schedules=[schedules[0], schedules[0]])
    with pytest.raises(InvalidScheduleError, match="a list of Schedule"):
        Scheduler(make_queue(), schedules[0])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: Schedule.every(0).job("t"), InvalidScheduleError),
        (lambda: Schedule.every(-5).job("t"), InvalidScheduleError),
        (lambda: Schedule.every(timedelta(0)).job("t"), InvalidScheduleError),
        (lambda: Schedule.cron("0 0 30 2 *").job("t"), InvalidScheduleError),
        (lambda: Schedule.cron("not cron").job("t"), InvalidScheduleError),
        (lambda: Schedule.cron("0 3 * * *", tz="Europe/Nowhere").job("t"), InvalidScheduleError),
        (lambda: Schedule.every(60, name="has space").job("t"), InvalidNameError),
        (lambda: Schedule.every(60, name="").job("t"), InvalidNameError),
        (lambda: Schedule.every(60, name="x" * 129).job("t"), InvalidNameError),
        (lambda: Schedule.every(60).job("bad type!"), InvalidNameError),
        (lambda: Schedule.every(60).job("t", queue="bad queue"), InvalidNameError),
        (lambda: Schedule.every(60).job("t", {"x": float("nan")}), InvalidPayloadError),
        (lambda: Schedule.every(60).job("t", priority=5000), InvalidOptionError),
        (lambda: Schedule.every(60).job("t", max_attempts=0), InvalidOptionError),
        (lambda: Schedule.every(60, missed="sometimes").job("t"), InvalidScheduleError),
        (lambda: Schedule.every(60, overlap="never").job("t"), InvalidScheduleError),
        (lambda: Schedule.every(60, jitter=-1).job("t"), InvalidScheduleError),
        (lambda: Schedule.every(60, jitter=60).job("t"), InvalidScheduleError),
        (lambda: Schedule.every(60, grace=float("inf")).job("t"), InvalidScheduleError),
        (lambda: Schedule("n", "0 3 * * *", "t"), InvalidScheduleError),  # type: ignore[arg-type]
        (lambda: Schedule("n", Cron("@daily"), "t", payload_json="{"), InvalidPayloadError),
    ],
)
def test_bad_input_raises_typed_errors_at_registration(build: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        build()
    assert isinstance(caught.value, ValidationError)


def test_policies_accept_strings() -> None:
    schedule = Schedule.every(60, missed="skip", overlap="skip").job("t")
    assert schedule.missed is Missed.SKIP and schedule.overlap is Overlap.SKIP


def test_payload_over_the_queue_limit_is_rejected_by_the_scheduler() -> None:
    big = Schedule.every(60).job("t", {"blob": "x" * 2000})
    with pytest.raises(PayloadTooLargeError):
        Scheduler(make_queue(max_payload_bytes=1000), [big])


def test_job_ids_and_keys_are_deterministic_per_slot() -> None:
    slot = datetime(2024, 3, 31, 1, tzinfo=UTC)
    schedule = Schedule.every(60).job("cleanup")
    assert schedule.job_id(slot) == "schedule:cleanup:every:60s:2024-03-31T01:00:00Z"
    assert schedule.unique_key(slot) == schedule.job_id(slot)
    skip = Schedule.every(60, overlap="skip").job("cleanup")
    assert skip.unique_key(slot) == "schedule:cleanup:every:60s"
    fraction = Schedule.every(0.2).job("t")
    assert fraction.job_id(slot + timedelta(seconds=0.2)).endswith("01:00:00.200000Z")
    long = Schedule.every(60, name="n" * 128).job("t")
    assert len(long.job_id(slot)) <= 128
    assert long.job_id(slot) != long.job_id(slot + timedelta(minutes=1))


def test_jitter_is_deterministic_and_bounded() -> None:
    schedule = Schedule.every(60, jitter=timedelta(seconds=10)).job("t")
    slots = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n) for n in range(200)]
    offsets = [(schedule.fire_time(slot) - slot).total_seconds() for slot in slots]
    assert all(0 <= offset < 10 for offset in offsets)
    assert len(set(offsets)) > 150, "spread over the window"
    again = Schedule.every(60, jitter=10).job("t")
    assert [again.fire_time(slot) for slot in slots] == [schedule.fire_time(s) for s in slots]
    assert Schedule.every(60).job("t").fire_time(slots[0]) == slots[0]


def test_introspection_before_starting() -> None:
    from queuekit.testing import ManualClock

    clock = ManualClock(datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC))
    scheduler = Scheduler(make_queue(), clock=clock)
    scheduler.cron("0 3 * * *", tz="Europe/Berlin").job("report")
    (state,) = scheduler.schedules
    assert state.next_slot == datetime(2024, 5, 2, 1, tzinfo=UTC)  # 03:00 CEST
    assert state.next_run == state.next_slot
    assert state.last_fire is None and state.skipped == () and state.fired == 0
    assert scheduler.state(state.name) == state
    assert not scheduler.running

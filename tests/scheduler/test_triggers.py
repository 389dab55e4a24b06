"""When slots fall: intervals anchored on a fixed instant, cron in IANA zones across DST."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from queuekit import InvalidScheduleError, ValidationError
from queuekit.scheduler.triggers import Cron, Interval, Trigger

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def slots(trigger: Trigger, start: datetime, end: datetime) -> list[datetime]:
    """Every slot in (start, end]."""
    found = []
    slot = trigger.next_after(start)
    while slot is not None and slot <= end:
        found.append(slot)
        slot = trigger.next_after(slot)
    return found


# Intervals


def test_interval_slots_are_anchored_on_the_epoch() -> None:
    five_minutes = Interval(timedelta(minutes=5))
    assert five_minutes.next_after(utc(2024, 5, 1, 12, 3, 10)) == utc(2024, 5, 1, 12, 5)
    assert five_minutes.next_after(utc(2024, 5, 1, 12, 5)) == utc(2024, 5, 1, 12, 10)
    assert five_minutes.latest_at_or_before(utc(2024, 5, 1, 12, 3, 10)) == utc(2024, 5, 1, 12)
    assert five_minutes.latest_at_or_before(utc(2024, 5, 1, 12, 5)) == utc(2024, 5, 1, 12, 5)
    before = five_minutes.before(utc(2024, 5, 1, 12, 5))
    assert [next(before), next(before)] == [utc(2024, 5, 1, 12), utc(2024, 5, 1, 11, 55)]


def test_sub_second_intervals_are_exact() -> None:
    tick = Interval(timedelta(seconds=0.3))
    found = slots(tick, utc(2024, 1, 1), utc(2024, 1, 1, 0, 0, 3))
    assert len(found) == 10
    assert found[0] == utc(2024, 1, 1) + timedelta(seconds=0.3)
    assert all(b - a == timedelta(seconds=0.3) for a, b in itertools.pairwise(found))
    assert tick.count_between(utc(2024, 1, 1), utc(2024, 1, 1, 0, 0, 3), 100) == 9
    assert tick.count_between(utc(2024, 1, 1), utc(2024, 1, 1, 0, 0, 3), 4) == 4


def test_interval_with_a_start_has_no_slot_before_it() -> None:
    hourly = Interval(timedelta(hours=1), utc(2024, 1, 1, 0, 15))
    assert hourly.latest_at_or_before(utc(2024, 1, 1)) is None
    assert hourly.next_after(utc(2023, 6, 1)) == utc(2024, 1, 1, 0, 15)
    assert hourly.next_after(utc(2024, 1, 1, 0, 15)) == utc(2024, 1, 1, 1, 15)
    assert list(hourly.before(utc(2024, 1, 1, 1, 15))) == [utc(2024, 1, 1, 0, 15)]


@pytest.mark.parametrize("interval", [0, -1, timedelta(0), timedelta(seconds=-5), 0.0001])
def test_zero_negative_or_tiny_intervals_are_rejected(interval: float | timedelta) -> None:
    with pytest.raises(InvalidScheduleError, match="interval must be at least"):
        Interval(interval)  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", [float("nan"), float("inf"), "5", True, None])
def test_non_durations_are_rejected(interval: object) -> None:
    with pytest.raises(InvalidScheduleError):
        Interval(interval)  # type: ignore[arg-type]


def test_naive_start_is_rejected() -> None:
    with pytest.raises(InvalidScheduleError, match="timezone-aware"):
        Interval(timedelta(minutes=1), datetime(2024, 1, 1))


# Cron


def test_cron_in_utc() -> None:
    nightly = Cron("0 3 * * *")
    assert nightly.next_after(utc(2024, 5, 1, 2, 59)) == utc(2024, 5, 1, 3)
    assert nightly.next_after(utc(2024, 5, 1, 3)) == utc(2024, 5, 2, 3)
    assert nightly.latest_at_or_before(utc(2024, 5, 1, 3)) == utc(2024, 5, 1, 3)
    assert nightly.latest_at_or_before(utc(2024, 5, 1, 2, 59)) == utc(2024, 4, 30, 3)
    assert list(zip(range(2), nightly.before(utc(2024, 5, 1, 3)), strict=False)) == [
        (0, utc(2024, 4, 30, 3)),
        (1, utc(2024, 4, 29, 3)),
    ]


def test_cron_seconds_field_and_aliases() -> None:
    every_ten_seconds = Cron("*/10 * * * * *")
    assert every_ten_seconds.next_after(utc(2024, 1, 1, 0, 0, 1)) == utc(2024, 1, 1, 0, 0, 10)
    assert Cron("@daily").next_after(utc(2024, 1, 1, 5)) == utc(2024, 1, 2)
    assert Cron("@hourly").next_after(utc(2024, 1, 1, 5, 1)) == utc(2024, 1, 1, 6)
    assert Cron("@weekly").next_after(utc(2024, 1, 1)) == utc(2024, 1, 7)  # a Sunday
    assert Cron("0 9 * * mon-fri").next_after(utc(2024, 1, 6)) == utc(2024, 1, 8, 9)


def test_day_of_month_and_day_of_week_combine_with_or() -> None:
    # Both restricted: the 13th of any month, and every Friday.
    either = slots(Cron("0 0 13 * FRI"), utc(2024, 9, 1), utc(2024, 9, 30))
    assert [slot.day for slot in either] == [6, 13, 20, 27]  # Fridays, and Friday the 13th
    either = slots(Cron("0 0 13 * MON"), utc(2024, 9, 1), utc(2024, 9, 30))
    assert [slot.day for slot in either] == [2, 9, 13, 16, 23, 30]
    # One of them a wildcard: only the other counts.
    assert [s.day for s in slots(Cron("0 0 * * MON"), utc(2024, 9, 1), utc(2024, 9, 30))] == [
        2,
        9,
        16,
        23,
        30,
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("61 * * * *", "malformed"),
        ("* * * *", "4 fields"),
        ("* * * * * * *", "7 fields"),
        ("every day", "2 fields"),
        ("0 0 * * FUNDAY", "malformed"),
        ("*/0 * * * *", "malformed"),
        ("@reboot", "unknown cron alias"),
        ("", "non-empty"),
    ],
)
def test_bad_cron_expressions_are_rejected(expression: str, message: str) -> None:
    with pytest.raises(InvalidScheduleError, match=message) as caught:
        Cron(expression)
    assert isinstance(caught.value, ValidationError)


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "../../etc/passwd", "Europe/"])
def test_unknown_time_zones_are_rejected(tz: str) -> None:
    with pytest.raises(InvalidScheduleError, match="unknown time zone"):
        Cron("0 3 * * *", tz)


def test_zoneinfo_objects_are_accepted() -> None:
    assert Cron("0 3 * * *", ZoneInfo(BERLIN)).tz == BERLIN  # type: ignore[arg-type]
    assert Cron("0 3 * * *", BERLIN) == Cron("0  3 * * *", BERLIN)


# DST: a wall-clock time fires once, whatever the clocks do.


def test_berlin_spring_forward_fires_a_skipped_time_once_at_the_transition() -> None:
    # 2024-03-31: at 02:00 CET clocks jump to 03:00 CEST (01:00 UTC); 02:30 does not exist.
    found = slots(Cron("30 2 * * *", BERLIN), utc(2024, 3, 29, 12), utc(2024, 4, 1, 12))
    assert found == [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30)]
    transition = found[1].astimezone(ZoneInfo(BERLIN))
    assert (transition.hour, transition.minute) == (3, 0)


def test_berlin_fall_back_fires_a_repeated_time_once_at_the_earlier_instant() -> None:
    # 2024-10-27: at 03:00 CEST clocks fall back to 02:00 CET; 02:30 happens twice.
    found = slots(Cron("30 2 * * *", BERLIN), utc(2024, 10, 26, 12), utc(2024, 10, 28, 12))
    assert found == [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]


def test_new_york_spring_forward_and_fall_back() -> None:
    # 2024-03-10: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    spring = slots(Cron("30 2 * * *", NEW_YORK), utc(2024, 3, 9, 12), utc(2024, 3, 11, 12))
    assert spring == [utc(2024, 3, 10, 7), utc(2024, 3, 11, 6, 30)]
    # 2024-11-03: 02:00 EDT falls back to 01:00 EST; 01:30 happens at 05:30 and 06:30 UTC.
    autumn = slots(Cron("30 1 * * *", NEW_YORK), utc(2024, 11, 2, 12), utc(2024, 11, 4, 12))
    assert autumn == [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)]


def test_several_skipped_times_fire_once_together() -> None:
    # 02:00 and 02:30 both fall in the gap: one slot, at the transition.
    found = slots(Cron("0,30 2 * * *", BERLIN), utc(2024, 3, 30, 12), utc(2024, 3, 31, 12))
    assert found == [utc(2024, 3, 31, 1)]


def test_wildcard_hours_follow_elapsed_time_across_dst() -> None:
    hourly = Cron("0 * * * *", BERLIN)
    # Autumn: the repeated hour is a real hour; it runs.
    autumn = slots(hourly, utc(2024, 10, 26, 23, 30), utc(2024, 10, 27, 3))
    assert autumn == [utc(2024, 10, 27, hour) for hour in range(4)]
    # Spring: no "02:00" exists, and no real hour is missing.
    spring = slots(hourly, utc(2024, 3, 30, 23, 30), utc(2024, 3, 31, 3))
    assert spring == [utc(2024, 3, 31, hour) for hour in range(4)]


def test_latest_slot_inside_the_repeated_hour() -> None:
    nightly = Cron("30 2 * * *", BERLIN)
    # 02:10 CET, the second pass through 02:xx (01:10 UTC): today's 02:30 CEST has passed.
    assert nightly.latest_at_or_before(utc(2024, 10, 27, 1, 10)) == utc(2024, 10, 27, 0, 30)
    # 02:10 CEST, the first pass (00:10 UTC): it has not.
    assert nightly.latest_at_or_before(utc(2024, 10, 27, 0, 10)) == utc(2024, 10, 26, 0, 30)
    assert nightly.next_after(utc(2024, 10, 27, 1, 10)) == utc(2024, 10, 28, 1, 30)
    # On the spring night, at and just before the transition.
    assert nightly.latest_at_or_before(utc(2024, 3, 31, 1)) == utc(2024, 3, 31, 1)
    assert nightly.latest_at_or_before(utc(2024, 3, 31, 0, 59)) == utc(2024, 3, 30, 1, 30)
    assert next(nightly.before(utc(2024, 3, 31, 1))) == utc(2024, 3, 30, 1, 30)


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK])
def test_a_year_of_nightly_slots_is_one_per_day(tz: str) -> None:
    found = slots(Cron("30 2 * * *", tz), utc(2024, 1, 1, 12), utc(2025, 1, 1, 12))
    local_days = [slot.astimezone(ZoneInfo(tz)).date() for slot in found]
    assert len(found) == 366 and len(set(local_days)) == 366
    assert all(a < b for a, b in itertools.pairwise(found))

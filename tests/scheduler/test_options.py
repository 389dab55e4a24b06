"""The every/cron options are written once: each entry point takes them all, and only them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import timedelta
from typing import Any

import pytest

from queuekit import Queue, Schedule, Scheduler
from queuekit.backends.memory import MemoryBackend
from queuekit.scheduler import Missed, Overlap, ScheduleBuilder, ScheduleKeywords, ScheduleOptions

OPTIONS: dict[str, Any] = {
    "missed": "skip",
    "overlap": "skip",
    "jitter": timedelta(seconds=2),
    "grace": 5,
}


def entry_points() -> list[Callable[..., ScheduleBuilder]]:
    scheduler = Scheduler(Queue(MemoryBackend()))
    return [
        lambda **options: Schedule.every(60, **options),
        lambda **options: Schedule.cron("0 3 * * *", **options),
        lambda **options: scheduler.every(60, **options),
        lambda **options: scheduler.cron("0 3 * * *", **options),
    ]


def test_the_keywords_are_the_options_and_the_name() -> None:
    options = {option.name for option in fields(ScheduleOptions)}
    assert set(ScheduleKeywords.__annotations__) == options | {"name"}
    assert options == set(OPTIONS), "a new option needs a value in OPTIONS"


@pytest.mark.parametrize("index", range(4))
def test_every_entry_point_takes_every_option(index: int) -> None:
    schedule = entry_points()[index](name="s", **OPTIONS).job("t")
    assert schedule.name == "s"
    assert (schedule.missed, schedule.overlap) == (Missed.SKIP, Overlap.SKIP)
    assert (schedule.jitter, schedule.grace) == (2.0, 5.0)


@pytest.mark.parametrize("index", range(4))
def test_a_misspelt_option_is_refused(index: int) -> None:
    with pytest.raises(TypeError, match="misssed"):
        entry_points()[index](misssed="skip")

"""Scheduling: interval and cron jobs, fired by a `Scheduler` beside your code, each slot once.

`options` (how a schedule fires), `triggers` (when: `Interval`, `Cron`), `schedule` (the
`Schedule` value and its builder), `state` (what a scheduler reports), `clocks`, `history`
(where a schedule stands, read from the backend) and `engine` (the `Scheduler`). See
docs/scheduler.md for the design.
"""

from .clocks import Clock, SystemClock
from .engine import SCHEDULER_HEADER, Scheduler
from .options import Missed, Overlap, ScheduleKeywords, ScheduleOptions
from .schedule import Schedule, ScheduleBuilder, default_name
from .state import Fire, ScheduleState, Skip, SkipReason
from .triggers import Cron, Interval, Trigger

__all__ = [
    "SCHEDULER_HEADER",
    "Clock",
    "Cron",
    "Fire",
    "Interval",
    "Missed",
    "Overlap",
    "Schedule",
    "ScheduleBuilder",
    "ScheduleKeywords",
    "ScheduleOptions",
    "ScheduleState",
    "Scheduler",
    "Skip",
    "SkipReason",
    "SystemClock",
    "Trigger",
    "default_name",
]

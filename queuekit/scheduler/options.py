"""The options `every` and `cron` take, written once: how a schedule fires besides when.

To add one, give `ScheduleOptions` a field (its default and check) and `ScheduleKeywords` its
keyword (the types a caller may pass): `Schedule.every`/`.cron`, `Scheduler.every`/`.cron`,
the builder and `Schedule` take it from there.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, TypedDict

from ..errors import InvalidScheduleError

DEFAULT_GRACE = 60.0
"""Seconds a slot may be late and still count as on time."""


class Missed(enum.StrEnum):
    """What to do with slots that passed while no scheduler could fire them."""

    RUN_ONCE = "run_once"
    """Enqueue one job, for the latest missed slot, standing in for all of them."""
    SKIP = "skip"
    """Enqueue nothing for them (each is recorded as skipped); carry on with the next slot."""


class Overlap(enum.StrEnum):
    """What to do when a slot comes while the schedule's previous job has not finished."""

    ALLOW = "allow"
    """Enqueue anyway."""
    SKIP = "skip"
    """Skip this slot (recorded) while a job of the schedule is pending, running or failed
    (waiting to retry)."""


@dataclass(frozen=True, kw_only=True)
class ScheduleOptions:
    """How a schedule fires, checked; every `Schedule` has these fields."""

    missed: Missed = Missed.RUN_ONCE
    overlap: Overlap = Overlap.ALLOW
    jitter: float = 0.0
    """Seconds: each slot fires up to this much late, by an amount every replica agrees on."""
    grace: float = DEFAULT_GRACE
    """Seconds a slot may be late and still count as on time (not missed)."""

    def __post_init__(self) -> None:
        # Callers may pass a policy's name and seconds or a timedelta: store the checked form.
        object.__setattr__(self, "missed", _choice(Missed, self.missed, "missed"))
        object.__setattr__(self, "overlap", _choice(Overlap, self.overlap, "overlap"))
        object.__setattr__(self, "jitter", seconds(self.jitter, "jitter"))
        object.__setattr__(self, "grace", seconds(self.grace, "grace"))

    @classmethod
    def from_keywords(cls, keywords: ScheduleKeywords) -> ScheduleOptions:
        """The options among `every`/`cron` keywords, checked (`name` is the builder's)."""
        given: dict[str, Any] = {key: value for key, value in keywords.items() if key != "name"}
        # `**keywords` takes any name at run time: refuse a misspelt one as a signature would.
        unknown = given.keys() - {option.name for option in fields(cls)}
        if unknown:
            raise TypeError(f"unexpected keyword argument {min(unknown)!r}")
        return cls(**given)


class ScheduleKeywords(TypedDict, total=False):
    """The keywords `every` and `cron` both take: `name` and `ScheduleOptions`' fields."""

    name: str | None
    missed: Missed | str
    overlap: Overlap | str
    jitter: float | timedelta
    grace: float | timedelta


class EveryKeywords(ScheduleKeywords, total=False):
    """`every`'s keywords: the shared ones and `start`, the instant slots are counted from."""

    start: datetime | None


class CronKeywords(ScheduleKeywords, total=False):
    """`cron`'s keywords: the shared ones and `tz`, an IANA time zone name."""

    tz: str


def seconds(value: object, what: str) -> float:
    """A duration given as seconds or a `timedelta`, checked: finite and >= 0."""
    if isinstance(value, timedelta):
        total = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        total = float(value)
    else:
        raise InvalidScheduleError(f"{what} must be seconds or a timedelta, not {value!r}")
    if not math.isfinite(total) or total < 0:
        raise InvalidScheduleError(f"{what} must be finite and >= 0, got {value!r}")
    return total


def _choice(kind: type[Missed] | type[Overlap], value: object, what: str) -> Any:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value)
    except ValueError:
        known = ", ".join(repr(member.value) for member in kind)
        raise InvalidScheduleError(f"{what} must be one of {known}, not {value!r}") from None


__all__ = [
    "DEFAULT_GRACE",
    "CronKeywords",
    "EveryKeywords",
    "Missed",
    "Overlap",
    "ScheduleKeywords",
    "ScheduleOptions",
    "seconds",
]

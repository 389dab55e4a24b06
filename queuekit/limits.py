"""Flow control: a queue's `Limits`, how much of them is in use, and `RateLimited`."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from .errors import InvalidOptionError
from .retry import Retry

MAX_LIMIT = 1_000_000
"""The largest count a limit takes."""
MIN_PERIOD_SECONDS = 0.001
"""The shortest rate window: a millisecond."""
MAX_PERIOD_SECONDS = 366 * 24 * 3600.0
"""The longest rate window: a year."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of a queue may run, kept in the backend and applied inside every claim.

    Every process and host claiming from the queue obeys them at once, with no coordinator:

    - `concurrency`: at most this many of the queue's jobs run anywhere;
    - `per_key`: at most this many run per `limit_key` (jobs without a key are not counted);
    - `rate`: at most this many start per `period` seconds in the whole queue;
    - `key_rate`: at most this many start per `period` seconds per `limit_key`;
    - `ordered`: a key's jobs run one at a time, in enqueue order (a job waiting to retry holds
      its key's line until it completes or is dead).

    Keys are served least recently served first, so one busy key cannot starve the others.
    Rate windows are fixed: they start at multiples of `period` on the backend's clock.
    """

    concurrency: int | None = None
    per_key: int | None = None
    rate: int | None = None
    key_rate: int | None = None
    period: float = 60.0
    ordered: bool = False

    def __post_init__(self) -> None:
        for name in ("concurrency", "per_key", "rate", "key_rate"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_LIMIT:
                raise InvalidOptionError(f"{name} must be an integer from 1 to {MAX_LIMIT}")
        period = self.period
        if (
            isinstance(period, bool)
            or not isinstance(period, int | float)
            or not math.isfinite(period)
            or not MIN_PERIOD_SECONDS <= period <= MAX_PERIOD_SECONDS
        ):
            raise InvalidOptionError(
                f"period must be from {MIN_PERIOD_SECONDS:g} to {MAX_PERIOD_SECONDS:.0f} seconds"
                " (a year)"
            )
        if not isinstance(self.ordered, bool):
            raise InvalidOptionError("ordered must be true or false")
        object.__setattr__(self, "period", float(period))

    @property
    def is_unlimited(self) -> bool:
        """True when nothing is limited (a queue with these limits behaves as without)."""
        return self == Limits(period=self.period)

    def to_json(self) -> str:
        """The stored form: compact JSON of every field."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Limits:
        """Limits from their stored form; unknown fields are refused."""
        values = json.loads(text)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: Any) -> Limits:
        """Limits from a mapping of field names (an API body, a stored form)."""
        if not isinstance(values, dict):
            raise InvalidOptionError("limits must be an object")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InvalidOptionError(
                f"unknown limit {unknown[0]!r}; the limits are {', '.join(sorted(names))}"
            )
        return cls(**values)


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """How much of a queue's limits is in use now, on the backend's clock."""

    limits: Limits | None
    running: int
    """The queue's running jobs, on every host."""
    started_in_window: int = 0
    """Jobs started in the current rate window (0 without a rate)."""
    window_ends_at: datetime | None = None
    """When the current rate window ends (None without a rate)."""
    held_until: datetime | None = None
    """Until when the whole queue is held by a `RateLimited` (None when it is not)."""
    held_keys: dict[str, datetime] = field(default_factory=dict)
    """The keys held now, and until when."""
    running_by_key: dict[str, int] = field(default_factory=dict)
    """Running jobs per key, for the busiest keys."""


class RateLimited(Retry):
    """Raise in a handler when the service it calls says "slow down".

    The job's `limit_key` (or its whole queue, when the job has no key or `whole_queue` is
    true) is held for `after` seconds: no process claims its jobs until then. The job itself
    runs again after that, without using an attempt.
    """

    def __init__(self, after: float | timedelta, *, whole_queue: bool = False) -> None:
        super().__init__(after)
        self.whole_queue = whole_queue


__all__ = ["LimitUsage", "Limits", "RateLimited"]

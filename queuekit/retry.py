"""Backoff policies: how long a failed attempt waits before the job is claimable again."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from .errors import InvalidOptionError
from .job import Job
from .validation import check_delay

RetryPolicy = Callable[[int], float]
"""Given the number of the attempt that just failed (1 for the first), seconds to wait."""


@dataclass(frozen=True, slots=True)
class Exponential:
    """`base * 2 ** (attempt - 1)` seconds, capped at `cap`, spread by ±`jitter` (a fraction).

    Jitter keeps many jobs that failed together from retrying together.
    """

    base: float = 1.0
    cap: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not (self.base > 0 and self.cap >= self.base and 0 <= self.jitter <= 1):
            raise InvalidOptionError("Exponential needs base > 0, cap >= base, 0 <= jitter <= 1")

    def __call__(self, attempt: int) -> float:
        delay = min(self.cap, self.base * 2.0 ** min(attempt - 1, 64))
        return min(self.cap, delay * random.uniform(1 - self.jitter, 1 + self.jitter))


@dataclass(frozen=True, slots=True)
class Fixed:
    """The same wait after every failure."""

    delay: float

    def __post_init__(self) -> None:
        if not self.delay >= 0:
            raise InvalidOptionError("Fixed needs a delay >= 0")

    def __call__(self, attempt: int) -> float:
        return self.delay


DEFAULT_RETRY = Exponential()


def next_retry(job: Job, wait: float | None) -> float | None:
    """The one rule for a failed attempt of `job` (as claimed): it runs again `wait` seconds
    from now, or never (None: dead) when there is no `wait` (a discard) or it was the last.

    The worker decides with it and `Backend.fail` applies the answer; `Backend.rescue` keeps
    the same rule for expired leases, with a `wait` of 0.
    """
    if wait is None or job.attempts >= job.max_attempts:
        return None
    return wait


class Retry(Exception):
    """Raise in a handler to run the job again after `after` seconds (or a `timedelta`): pass
    on the wait a service's `Retry-After` asks for.

    By default this is a snooze: the attempt does not count towards `max_attempts`. With
    `count_attempt=True` it is a failure whose wait is `after` instead of the task's backoff.
    It wins over the task's `retry_on` and `discard_on`.
    """

    def __init__(self, after: float | timedelta = 0.0, *, count_attempt: bool = False) -> None:
        self.after = check_delay(after, "after")
        super().__init__(f"retry in {self.after:g} s")
        self.count_attempt = count_attempt


class Discard(Exception):
    """Raise in a handler to send the job straight to `dead`, whatever attempts are left."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

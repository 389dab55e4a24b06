"""What the scheduler asks of time (`Clock`), and the wall clock it uses unless told otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import anyio


class Clock(Protocol):
    """What the scheduler asks of time; inject `queuekit.testing.ManualClock` in tests."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    async def sleep_until(self, deadline: datetime) -> None:
        """Return once `now() >= deadline`."""
        ...


class SystemClock:
    """The wall clock; sleeps in short naps so that clock changes and suspends are noticed."""

    max_nap = 30.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: datetime) -> None:
        while True:
            remaining = (deadline - self.now()).total_seconds()
            if remaining <= 0:
                return
            await anyio.sleep(min(remaining, self.max_nap))


__all__ = ["Clock", "SystemClock"]

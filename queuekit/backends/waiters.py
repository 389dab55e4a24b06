"""`KeyedWaiters`: tasks waiting on keys (queue names, job ids) until a change wakes the key."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterable, Iterator


class KeyedWaiters:
    """Events registered under keys: waking a key sets the event of every task waiting on it.

    A waiter registers before it looks at the store, so a change made after its look wakes it.
    """

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    def waited_on(self) -> list[str]:
        """The keys someone waits on now."""
        return list(self._events)

    @contextlib.contextmanager
    def registered(self, keys: Iterable[str]) -> Iterator[asyncio.Event]:
        """An event that any of `keys` waking sets, for as long as the block runs."""
        keys = list(keys)
        event = asyncio.Event()
        for key in keys:
            self._events.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            for key in keys:
                events = self._events.get(key)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._events[key]

    def wake(self, keys: Iterable[str]) -> None:
        for key in keys:
            for event in self._events.get(key, ()):
                event.set()

    def wake_all(self) -> None:
        for events in self._events.values():
            for event in events:
                event.set()


async def wait_at_most(event: asyncio.Event, seconds: float) -> None:
    """Wait for `event`, at most `seconds` (which may be infinite).

    With `asyncio.timeout`, not `asyncio.wait_for`: on Python 3.11, `wait_for` swallows a
    cancellation that comes as the event is set (CPython gh-86296), and the cancelled task
    goes on as if nothing had happened.
    """
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(None if math.isinf(seconds) else seconds):
            await event.wait()

"""`Debouncer`: at most one wake-up NOTIFY per queue per cooldown from this process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

logger = logging.getLogger("queuekit.postgres")


class Debouncer:
    """At most one wake-up NOTIFY per queue per `cooldown` from this process.

    A wake-up that falls inside the cooldown is owed, not dropped. The first enqueue of the
    queue once the cooldown is over carries it in its own statement; if none comes within
    `cooldown` of the first owed one, a NOTIFY of its own goes out then. So a waiter elsewhere
    hears about every job within `cooldown`, and a steady stream of single enqueues sends no
    statement besides its inserts.
    """

    def __init__(self, cooldown: float, send: Callable[[str], Awaitable[None]]) -> None:
        self._cooldown = cooldown
        self._send = send
        self._last: dict[str, float] = {}
        self._trailing: dict[str, asyncio.Task[None]] = {}

    def take(self, queues: Iterable[str]) -> list[str]:
        """The queues to notify now; the others get a trailing notification."""
        now = time.monotonic()
        due: list[str] = []
        for queue in queues:
            last = self._last.get(queue)
            if last is None or now - last >= self._cooldown:
                self._last[queue] = now
                due.append(queue)
                owed = self._trailing.pop(queue, None)
                if owed is not None:  # this enqueue carries it
                    owed.cancel()
            else:
                self._owe(queue)
        return due

    def unsent(self, queues: Iterable[str]) -> None:
        """The statement that was to carry the wake-ups of `queues` (from `take`) failed:
        each goes out on its own instead, a cooldown from now."""
        for queue in queues:
            self._owe(queue)

    def _owe(self, queue: str) -> None:
        """A wake-up of `queue` goes out on its own a cooldown from now, unless one is owed
        already or an enqueue carries it first."""
        if queue not in self._trailing:
            self._trailing[queue] = asyncio.create_task(self._trail(queue))

    async def _trail(self, queue: str) -> None:
        await asyncio.sleep(self._cooldown)
        self._last[queue] = time.monotonic()
        del self._trailing[queue]
        await self._send_quietly(queue)

    async def _send_quietly(self, queue: str) -> None:
        try:
            await self._send(queue)
        except Exception as exc:  # a lost wake-up only costs a poll interval
            logger.warning("could not send a wake-up for queue %r: %s", queue, exc)

    async def close(self) -> None:
        """Send the trailing notifications now rather than drop them."""
        trailing, self._trailing = self._trailing, {}
        for task in trailing.values():
            task.cancel()
        for queue in trailing:
            await self._send_quietly(queue)

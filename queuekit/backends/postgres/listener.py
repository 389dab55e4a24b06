"""`Listener`: the one LISTEN connection of a backend's waiters, which wakes them and reconnects
(`ChannelListener`, which the event stream's listener reuses)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ..losses import LossWaiters
from ..waiters import KeyedWaiters, wait_at_most
from .connections import Connection

logger = logging.getLogger("queuekit.postgres")

READY_WAIT = 2.0
"""How long the first waiter waits for the LISTEN connection to come up."""
PING_SECONDS = 30.0
"""An idle LISTEN connection is checked this often, so a silently dead one is replaced."""
RECONNECT_MIN, RECONNECT_MAX = 0.1, 5.0
"""Backoff bounds, in seconds, between attempts to re-establish the LISTEN connection."""
OUTCOME_IDS_SEPARATOR = " "
"""Between the job ids of an outcome notification, `o:<id> <id> ...` (see queries.sql)."""


class ChannelListener:
    """Holds one LISTEN connection on `channel`, passing each notification's payload to
    `_on_notification`. When the connection drops it reconnects with backoff, and calls
    `_on_listening` every time it is up, since notifications sent meanwhile are lost."""

    def __init__(
        self,
        channel: str,
        where: str,
        connect: Callable[[], Awaitable[Connection]],
        release: Callable[[Connection], Awaitable[None]],
    ) -> None:
        self._channel = channel
        self._where = where
        self._connect = connect
        self._release = release
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closing = False
        self.connections = 0
        """How many times the LISTEN connection has been (re)established."""

    def enable(self) -> None:
        """Let a waiter start listening again (after `disable` or `close`)."""
        self._closing = False

    def disable(self) -> None:
        """Start no LISTEN connection from now on: the backend is closing."""
        self._closing = True

    async def close(self) -> None:
        """Stop listening for good (until `enable`)."""
        self.disable()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def ensure(self, wait: float) -> None:
        """Start the shared LISTEN connection if needed.

        The first time, give it up to `wait` s to come up, so the caller's look at the table
        happens while listening. While it is reconnecting later, don't wait: a waiter that
        registers meanwhile is woken when it is back (notifications sent during the gap are
        lost, so every waiter is woken then).
        """
        if self._closing:
            return
        if self._task is None:
            self._task = asyncio.create_task(self._listen_forever())
        if self.connections == 0:
            await wait_at_most(self._listening, wait)

    async def _listen_forever(self) -> None:
        """Hold one LISTEN connection; when it drops, reconnect with backoff, forever."""
        delay = RECONNECT_MIN
        while not self._closing:
            conn: Connection | None = None
            try:
                conn = await self._connect()
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(self._channel, self._on_notification)
                await self._on_connected(conn)
                self._listening.set()
                if self.connections:
                    logger.info("LISTEN connection to %s is back", self._where)
                self.connections += 1
                self._on_listening()
                delay = RECONNECT_MIN
                while not lost.is_set():
                    await wait_at_most(lost, PING_SECONDS)
                    if not lost.is_set():
                        await conn.execute("SELECT 1", timeout=PING_SECONDS)
                logger.warning("LISTEN connection to %s was lost; reconnecting", self._where)
            except Exception as exc:
                logger.warning(
                    "LISTEN connection to %s failed (%s: %s); retrying in %.1f s",
                    self._where,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
            finally:
                self._listening.clear()
                if conn is not None:
                    await self._release(conn)

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        """A notification came (`payload` is its text)."""

    async def _on_connected(self, conn: Connection) -> None:
        """`conn` LISTENs now: say so, where others need to know (this default: nothing)."""

    def _on_listening(self) -> None:
        """The connection is up, the first time or again."""


class Listener(ChannelListener):
    """The LISTEN connection on `channel` of every waiter of a backend, started by the first
    waiter. A notification `w:<queue>` wakes `work` waiters; `o:<ids>` (or `o`, every job)
    wakes `outcomes` waiters; `c:<ids>` (or `c`), jobs cancelled, wakes `losses` waiters (the
    workers holding them). Once the connection is up or back, it wakes everyone."""

    def __init__(
        self,
        channel: str,
        where: str,
        connect: Callable[[], Awaitable[Connection]],
        release: Callable[[Connection], Awaitable[None]],
        work: KeyedWaiters,
        outcomes: KeyedWaiters,
        losses: LossWaiters,
    ) -> None:
        super().__init__(channel, where, connect, release)
        self._work = work
        self._outcomes = outcomes
        self._losses = losses

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if not isinstance(payload, str):
            return
        if payload.startswith("w:"):
            self._work.wake([payload[2:]])
        elif payload == "o":
            self._outcomes.wake_all()
        elif payload == "c":
            self._losses.wake_all()
        elif payload.startswith("c:"):
            self._losses.wake(payload[2:].split(OUTCOME_IDS_SEPARATOR))
        elif payload.startswith("o:"):
            ids = payload[2:]
            named = set(ids.split(OUTCOME_IDS_SEPARATOR))
            self._outcomes.wake(
                job_id
                for job_id in self._outcomes.waited_on()
                if job_id in named or (OUTCOME_IDS_SEPARATOR in job_id and job_id in ids)
            )

    def _on_listening(self) -> None:
        # Whatever was sent while nobody listened is lost: let every waiter look.
        self._work.wake_all()
        self._outcomes.wake_all()
        self._losses.wake_all()


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    """A callback that sets `event`, whatever it is called with."""
    return lambda _ignored: event.set()

"""`HandlerThread`: a plain (sync) handler's call in a worker thread, whose end can be awaited."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

R = TypeVar("R")


class _State(enum.Enum):
    QUEUED = enum.auto()
    RUNNING = enum.auto()
    ENDED = enum.auto()
    DROPPED = enum.auto()
    """Cancelled before a thread picked the call up: it never runs."""


class HandlerThread:
    """One synchronous call in a worker thread, and whether that thread still runs it.

    Python cannot stop a thread. When the await in `run` is cancelled (a timeout, a lost lease,
    shutdown) it returns at once, but a call that has started runs on: `running` says so and
    `ended()` waits for it. The call may stop early on its own by calling
    `anyio.from_thread.check_cancelled()`, which raises once its attempt is cancelled.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = _State.QUEUED
        self._ended: anyio.Event | None = None
        """Made by `run`: most handlers are async, and never call it."""

    @property
    def running(self) -> bool:
        """True while a thread runs the call (after a cancelled `run` too)."""
        return self._state is _State.RUNNING

    async def ended(self) -> None:
        """Return once the call is over (at once if it never started)."""
        if self._state is _State.RUNNING and self._ended is not None:
            await self._ended.wait()

    async def run(self, call: Callable[[], R], timeout: float | None = None) -> R:
        """Run `call` in a worker thread and return its result, keeping the event loop free;
        `TimeoutError` after `timeout` seconds, counted from when a thread takes the call
        (waiting for a free thread of the pool is not the call's time)."""
        loop = asyncio.get_running_loop()
        ended = self._ended = anyio.Event()

        def in_thread() -> R:
            with self._lock:
                if self._state is _State.DROPPED:
                    raise RuntimeError("dropped before it started")  # nobody reads it
                self._state = _State.RUNNING
            if timeout is not None:
                with contextlib.suppress(RuntimeError):  # the event loop is closed: none waits
                    loop.call_soon_threadsafe(_start_clock, clock, loop, timeout)
            try:
                return call()
            finally:
                with self._lock:
                    self._state = _State.ENDED
                with contextlib.suppress(RuntimeError):  # the event loop is closed: none waits
                    loop.call_soon_threadsafe(ended.set)

        try:
            with anyio.fail_after(None) as clock:  # its deadline is set once the call starts
                return await anyio.to_thread.run_sync(in_thread, abandon_on_cancel=True)
        finally:
            with self._lock:
                if self._state is _State.QUEUED:
                    self._state = _State.DROPPED


def _start_clock(scope: anyio.CancelScope, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
    """Give the call `timeout` seconds from now (the loop's clock is the scope's); a scope
    already left ignores it."""
    scope.deadline = loop.time() + timeout

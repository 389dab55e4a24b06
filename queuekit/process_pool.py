"""`ProcessPool`: handlers of `process=True` tasks run in child processes, for CPU-bound or
blocking code; a process is killed when its job's attempt is cancelled or times out, and
replaced after a number of jobs."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import anyio
import anyio.to_thread

from .errors import InvalidOptionError, ProcessTaskError

DEFAULT_MAX_JOBS = 1000
"""Jobs a process runs before it is replaced (memory a handler leaks goes with it)."""


def reference(function: Callable[..., Any]) -> tuple[str, str]:
    """Where a child process finds `function`: its module and qualified name. A function it
    cannot import (a nested one, a lambda) is refused when the task is registered."""
    qualname = getattr(function, "__qualname__", "")
    if "<" in qualname or not getattr(function, "__module__", None):
        raise InvalidOptionError(
            "a process task's function must be defined at the top level of a module, "
            f"not {qualname!r}"
        )
    return function.__module__, qualname


READY = "ready"
"""What a child sends once it has started, before any call."""


@dataclass
class _Child:
    process: BaseProcess
    connection: Connection
    jobs: int = 0


@dataclass
class ProcessPool:
    """At most `size` child processes (started by `spawn`, so they share no state with the
    worker), each running one handler at a time and replaced after `max_jobs` jobs."""

    size: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_jobs: int = DEFAULT_MAX_JOBS
    _idle: list[_Child] = field(default_factory=list, init=False)
    _slots: anyio.CapacityLimiter | None = field(default=None, init=False)
    _threads: anyio.CapacityLimiter | None = field(default=None, init=False)
    """The threads that wait for the children's replies (not the default thread pool's)."""

    def __post_init__(self) -> None:
        for name in ("size", "max_jobs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidOptionError(f"{name} must be an int >= 1")

    async def run(
        self,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        timeout: float | None = None,
    ) -> Any:
        """Call `function(*args, **kwargs)` in a child process and return what it returns, or
        raise what it raised; `TimeoutError` after `timeout` seconds, counted from when a
        started child takes the call (starting one can take seconds on a busy machine, and is
        not the call's time). If this await is cancelled or times out, the child is killed at
        once."""
        if self._slots is None or self._threads is None:
            self._slots = anyio.CapacityLimiter(self.size)
            self._threads = anyio.CapacityLimiter(self.size)
        async with self._slots:
            started = not self._idle
            child = _start() if started else self._idle.pop()
            try:
                if started:
                    await self._reply(child)  # its READY: outside the call's time
                with anyio.fail_after(timeout):
                    child.connection.send((reference(function), args, kwargs))
                    reply = await self._reply(child)
            except BaseException:
                _kill(child)  # a cancel, a timeout, or the child died: none survives it
                raise
            child.jobs += 1
            if child.jobs >= self.max_jobs:
                _stop(child)
            else:
                self._idle.append(child)
        return _outcome(reply, child.process.pid)

    async def _reply(self, child: _Child) -> Any:
        """What `child` sends next, waited for in a thread of the pool's own."""
        return await anyio.to_thread.run_sync(
            _receive, child, abandon_on_cancel=True, limiter=self._threads
        )

    def close(self) -> None:
        """Stop the idle processes (a running one is killed by its job's cancel)."""
        while self._idle:
            _stop(self._idle.pop())


CURRENT: ContextVar[ProcessPool] = ContextVar("queuekit_process_pool")
"""The pool of the worker running this job (`Worker(process_pool=...)`)."""


@contextmanager
def pool_in_use(pool: ProcessPool) -> Iterator[None]:
    """Make `pool` the one process tasks run in, within the block; close it after."""
    token = CURRENT.set(pool)
    try:
        yield
    finally:
        CURRENT.reset(token)
        pool.close()


def _start() -> _Child:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(theirs,), daemon=True, name="queuekit-task")
    process.start()
    theirs.close()
    return _Child(process, ours)


def _receive(child: _Child) -> Any:
    try:
        return child.connection.recv()
    except (EOFError, OSError):
        child.process.join(timeout=5)
        code = child.process.exitcode
        raise ProcessTaskError(f"the process running the job exited (code {code})") from None


def _outcome(reply: Any, pid: int | None) -> Any:
    kind, value, text = reply
    if kind == "ok":
        return value
    if not isinstance(value, BaseException):
        raise ProcessTaskError(value)
    value.add_note(f"raised in process task (pid {pid}):\n{text}")
    raise value


def _kill(child: _Child) -> None:
    child.process.kill()
    child.process.join(timeout=5)
    child.connection.close()


def _stop(child: _Child) -> None:
    child.connection.close()  # the child's recv ends: it exits
    child.process.join(timeout=5)
    if child.process.is_alive():
        _kill(child)


def _serve(connection: Connection) -> None:
    """A child process: say it is ready, then run each call it is sent until the worker
    closes the pipe."""
    connection.send(READY)
    while True:
        try:
            (module, qualname), args, kwargs = connection.recv()
        except (EOFError, OSError):
            return
        try:
            result = _function(module, qualname)(*args, **kwargs)
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
            reply: tuple[str, Any, str] = ("ok", result, "")
        except BaseException as exc:  # everything goes back to the worker
            reply = ("error", exc, traceback.format_exc())
        try:
            connection.send(reply)
        except Exception as exc:  # an unpicklable result or exception
            kind = "result" if reply[0] == "ok" else "exception"
            detail = f"{type(reply[1]).__name__}: {reply[1]}"
            connection.send(
                ("error", f"the {kind} could not be sent back ({exc}): {detail}", reply[2])
            )


def _function(module: str, qualname: str) -> Callable[..., Any]:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    function: Callable[..., Any] = getattr(found, "function", found)  # a `Task` holds it
    return function


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


__all__ = ["DEFAULT_MAX_JOBS", "ProcessPool", "pool_in_use"]

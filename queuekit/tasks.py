"""`Tasks`, the registry of handlers, and `Task`, a handler that enqueues itself, typed."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, Unpack, cast, overload

from .errors import InvalidOptionError
from .job import JSON, Job, Priority
from .options import EnqueueOptions
from .queue import Queue
from .retry import DEFAULT_RETRY, RetryPolicy
from .threads import HandlerThread
from .validation import DEFAULT_MAX_ATTEMPTS, check_max_attempts, check_name, check_seconds

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Task(Generic[P, R]):
    """A registered handler. Call it to run it directly; `enqueue` it to run it in a worker."""

    name: str
    function: Callable[P, Awaitable[R]] | Callable[P, R]
    queue: str = "default"
    priority: int = Priority.NORMAL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float | None = None
    """Seconds an attempt may run before it fails with `TimeoutError`; None for no limit."""
    retry: RetryPolicy = DEFAULT_RETRY
    options: EnqueueOptions = field(default_factory=EnqueueOptions)
    """Per-job options from `with_options`; `queue`, `priority`, `max_attempts` win over the
    task's own."""
    registry: Tasks | None = field(default=None, repr=False, compare=False)
    """The `Tasks` it was registered in."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R] | R:
        return self.function(*args, **kwargs)

    def with_options(self, **options: Unpack[EnqueueOptions]) -> Task[P, R]:
        """A copy of this task that enqueues with these options added to its own.

        The options are `Queue.enqueue`'s (`queuekit.options.OPTIONS`).
        """
        return replace(self, options={**self.options, **options})

    async def enqueue(self, queue: Queue, /, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue a run of this task; mypy checks the arguments against the handler's.

        Every keyword here is the handler's: per-job options, `headers` too, come from
        `with_options(...)`.
        """
        try:
            bound = inspect.signature(self.function).bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidOptionError(f"bad arguments for task {self.name!r}: {exc}") from None
        options: EnqueueOptions = {
            "queue": self.queue,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            **self.options,
        }
        return await queue.enqueue(self.name, dict(bound.arguments), **options)

    async def run(self, payload: JSON, *, thread: HandlerThread | None = None) -> Any:
        """Run the handler on a job's payload: a dict is keyword arguments, None is none.

        A synchronous handler runs in a worker thread, so as not to block the event loop; pass
        `thread` to learn whether that thread still runs after this await was cancelled.
        """
        function = cast(Callable[..., Any], self.function)
        args: tuple[JSON, ...] = () if payload is None or isinstance(payload, dict) else (payload,)
        kwargs: dict[str, JSON] = payload if isinstance(payload, dict) else {}
        if _is_coroutine_function(function):
            return await function(*args, **kwargs)
        call = functools.partial(function, *args, **kwargs)
        return await (HandlerThread() if thread is None else thread).run(call)


_is_coroutine_function = functools.cache(inspect.iscoroutinefunction)
"""Asked once per handler, not once per job."""


class Tasks:
    """The handlers a worker can run, by task name."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task[Any, Any]] = {}

    def task(
        self,
        name: str | None = None,
        *,
        queue: str = "default",
        priority: int = Priority.NORMAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float | timedelta | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> _Register:
        """Register a function as a task, by default under its own name."""
        return _Register(
            self,
            name,
            Task(
                name="",
                function=_unset,
                queue=check_name(queue),
                priority=priority,
                max_attempts=check_max_attempts(max_attempts),
                timeout=None
                if timeout is None
                else check_seconds(timeout, "timeout", allow_zero=False),
                retry=retry,
                registry=self,
            ),
        )

    def _add(self, task: Task[P, R]) -> Task[P, R]:
        if task.name in self._tasks:
            raise InvalidOptionError(f"a task named {task.name!r} is already registered")
        self._tasks[task.name] = task
        return task

    def get(self, name: str) -> Task[Any, Any] | None:
        return self._tasks.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[Task[Any, Any]]:
        return iter(self._tasks.values())


def _unset() -> None:
    """The placeholder handler of a task's settings before the decorator receives the function."""


@dataclass(frozen=True)
class _Register:
    """The decorator `Tasks.task(...)` returns; overloaded so mypy sees through async handlers."""

    tasks: Tasks
    name: str | None
    settings: Task[..., Any]

    @overload
    def __call__(self, function: Callable[P, Awaitable[R]]) -> Task[P, R]: ...

    @overload
    def __call__(self, function: Callable[P, R]) -> Task[P, R]: ...

    def __call__(self, function: Callable[P, Any]) -> Task[P, Any]:
        task_name = check_name(self.name or function.__name__, "task name")
        task = cast(Task[P, Any], replace(self.settings, name=task_name, function=function))
        return self.tasks._add(task)

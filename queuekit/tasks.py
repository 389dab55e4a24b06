"""`Tasks`, the registry of handlers, and `Task`, a handler that enqueues itself, typed."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, Unpack, cast, overload

import anyio

from .context import _current
from .errors import InvalidOptionError, ParentResultsTooLargeError, PayloadValidationError
from .job import JSON, Job, NewJob, Priority
from .options import EnqueueOptions, new_job
from .parent_results import results_parameter
from .process_pool import CURRENT, ProcessPool, reference
from .queue import Queue
from .retry import DEFAULT_RETRY, Discard, RetryPolicy
from .threads import HandlerThread
from .typed import codec_for
from .validation import DEFAULT_MAX_ATTEMPTS, check_max_attempts, check_name, check_seconds

_NO_LIMIT = contextlib.nullcontext()
"""A reusable do-nothing context for a handler without a timeout (cheaper than a scope per job)."""

P = ParamSpec("P")
R = TypeVar("R")
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


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
    retry_on: tuple[type[BaseException], ...] | None = None
    """Only these exceptions (and their subclasses) are retried: any other ends the job
    `dead` at once. None: every exception is."""
    discard_on: tuple[type[BaseException], ...] = ()
    """These exceptions end the job `dead` at once, attempts left or not (as `Discard`)."""
    limit_key: str | None = None
    """The handler argument whose value (as text) is each job's `limit_key`, the key its
    queue's per-key `Limits` count it under; `with_options(limit_key=...)` wins over it."""
    process: bool = False
    """Run the handler in a child process of the worker's `ProcessPool` (CPU-bound or blocking
    code): killed at its timeout or cancel. Its arguments and result are pickled;
    `current_job()` is not available inside it."""
    options: EnqueueOptions = field(default_factory=EnqueueOptions)
    """Per-job options from `with_options`; `queue`, `priority`, `max_attempts` win over the
    task's own."""
    registry: Tasks | None = field(default=None, repr=False, compare=False)
    """The `Tasks` it was registered in."""

    @functools.cached_property
    def _signature(self) -> inspect.Signature:
        """The handler's, read once: reading it for each enqueue took 4-5 % of its CPU."""
        return inspect.signature(self.function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R] | R:
        return self.function(*args, **kwargs)

    def retry_in(self, failure: BaseException, attempt: int) -> float | None:
        """Seconds until a job whose attempt number `attempt` failed with `failure` may run
        again (its backoff), or None when `retry_on` or `discard_on` refuse it a retry."""
        if isinstance(failure, self.discard_on):
            return None
        if self.retry_on is not None and not isinstance(failure, self.retry_on):
            return None
        return self.retry(attempt)

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
        return await self._enqueue(queue, None, args, kwargs)

    async def enqueue_in_transaction(
        self, queue: Queue, connection: object, /, *args: P.args, **kwargs: P.kwargs
    ) -> Job:
        """`enqueue` inside your own open transaction on `connection`, as `Queue.enqueue`'s
        `connection=`: the job exists only if that transaction commits.

        `connection` is positional because every keyword here is the handler's.
        """
        return await self._enqueue(queue, connection, args, kwargs)

    def step(self, *args: P.args, **kwargs: P.kwargs) -> NewJob:
        """A run of this task as a job to compose into a workflow (`queuekit.workflows`) or
        pass to `Queue.enqueue_many`, not enqueued; mypy checks the arguments as `enqueue`'s.

        A parameter annotated `ParentResults[...]` is left to the worker, which fills it with
        the parents' results (see `queuekit.parent_results`).
        """
        payload, options = self._request(args, kwargs)
        return new_job(self.name, payload, **options)

    async def _enqueue(
        self, queue: Queue, connection: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Job:
        payload, options = self._request(args, kwargs)
        return await queue.enqueue(self.name, payload, connection=connection, **options)

    def _request(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[JSON, EnqueueOptions]:
        """The payload and options of a run of this task with these arguments."""
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidOptionError(f"bad arguments for task {self.name!r}: {exc}") from None
        options: EnqueueOptions = {
            "queue": self.queue,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            **self.options,
        }
        codec = codec_for(self.name, self.function)
        arguments = bound.arguments
        if self.limit_key is not None and arguments.get(self.limit_key) is not None:
            options.setdefault("limit_key", str(arguments[self.limit_key]))
        payload = dict(arguments) if codec is None else codec.encode_arguments(arguments)
        return payload, options

    async def result(
        self, queue: Queue, job: Job | str, /, *, timeout: float | timedelta | None = None
    ) -> R:
        """Wait for a job of this task to finish; its result as the handler's return type.

        `Queue.result` gives the same result as the stored JSON; this raises what it raises.
        """
        value = await queue.result(job if isinstance(job, str) else job.id, timeout=timeout)
        codec = codec_for(self.name, self.function)
        return cast(R, value if codec is None else codec.decode_result(value))

    async def run(
        self, payload: JSON, *, thread: HandlerThread | None = None, timeout: float | None = None
    ) -> Any:
        """Run the handler on a job's payload and return its result as JSON to store.

        A dict is keyword arguments, None is none. A typed handler's payload is validated and
        converted first, its result encoded after (`queuekit.typed`); either failing raises
        `Discard`, as another attempt would fail the same way. A synchronous handler runs in a
        worker thread, so as not to block the event loop; pass `thread` to learn whether that
        thread still runs after this await was cancelled. The handler gets `timeout` seconds
        (`TimeoutError` beyond), a sync one's counted once a thread takes the call, a process
        task's once a started process does.
        """
        function = cast(Callable[..., Any], self.function)
        args: tuple[Any, ...] = () if payload is None or isinstance(payload, dict) else (payload,)
        kwargs: dict[str, Any] = payload if isinstance(payload, dict) else {}
        parameter = results_parameter(function)
        if parameter is not None and (payload is None or isinstance(payload, dict)):
            kwargs = await _with_parent_results(kwargs, parameter)
            payload = kwargs
        codec = codec_for(self.name, self.function)
        if codec is not None:
            try:
                bound = codec.decode_arguments(payload)
            except PayloadValidationError as exc:
                raise Discard(str(exc)) from exc
            args, kwargs = bound.args, bound.kwargs
        if self.process:
            pool = CURRENT.get(None) or ProcessPool(size=1, max_jobs=1)  # outside a worker
            result = await pool.run(function, args, kwargs, timeout=timeout)
        elif _is_coroutine_function(function):
            with _NO_LIMIT if timeout is None else anyio.fail_after(timeout):
                result = await function(*args, **kwargs)
        else:
            call = functools.partial(function, *args, **kwargs)
            result = await (HandlerThread() if thread is None else thread).run(call, timeout)
        if codec is None:
            return result
        try:
            return codec.encode_result(result)
        except PayloadValidationError as exc:
            raise Discard(str(exc)) from exc


async def _with_parent_results(kwargs: dict[str, Any], parameter: str) -> dict[str, Any]:
    """`kwargs` with `parameter` (a `ParentResults` one) set to the results of the running
    job's parents that completed, unless given; left out outside a worker."""
    context = _current.get(None)
    if parameter in kwargs or context is None or context.queue is None:
        return kwargs
    try:
        outcomes = await context.parents()
    except ParentResultsTooLargeError as exc:
        raise Discard(str(exc)) from exc  # the parents' results will not shrink on a retry
    return {**kwargs, parameter: [outcome.result for outcome in outcomes if outcome.completed]}


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
        retry_on: ExceptionTypes | None = None,
        discard_on: ExceptionTypes = (),
        limit_key: str | None = None,
        process: bool = False,
    ) -> _Register:
        """Register a function as a task, by default under its own name.

        `retry_on` and `discard_on` take an exception class or a tuple of them (see `Task`);
        `process=True` runs it in a child process (see `Task.process`).
        """
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
                retry_on=None if retry_on is None else _exception_types(retry_on, "retry_on"),
                discard_on=_exception_types(discard_on, "discard_on"),
                limit_key=limit_key,
                process=process,
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


def _exception_types(value: ExceptionTypes, what: str) -> tuple[type[BaseException], ...]:
    """An exception class or a tuple of them, as a tuple, checked."""
    types = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(item, type) and issubclass(item, BaseException) for item in types):
        raise InvalidOptionError(f"{what} takes exception classes, got {value!r}")
    return types


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
        key = self.settings.limit_key
        if key is not None and key not in inspect.signature(function).parameters:
            raise InvalidOptionError(f"limit_key {key!r} is not an argument of {task_name!r}")
        if self.settings.process:
            reference(function)  # a child process must be able to import it
        task = cast(Task[P, Any], replace(self.settings, name=task_name, function=function))
        return self.tasks._add(task)

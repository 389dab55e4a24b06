"""`Queue`, the handle applications hold, and `connect()`, which picks a backend from a URL."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import Self, Unpack
from urllib.parse import urlsplit

from .backend import Backend, Batch, JobFilter, TransactionalBackend
from .errors import (
    InvalidConnectionError,
    InvalidNameError,
    InvalidOptionError,
    InvalidURLError,
    JobFailedError,
    JobNotFoundError,
    PayloadTooLargeError,
)
from .job import JSON, TERMINAL_STATUSES, Job, JobPage, JobStatus, NewJob
from .limits import Limits, LimitUsage
from .middleware import CallEnqueue, EnqueueMiddleware, chain_enqueue, default_enqueue_middleware
from .options import EnqueueOptions, new_job
from .stats import QueueStats
from .validation import (
    CURSOR_PATTERN,
    DEFAULT_MAX_PAYLOAD_BYTES,
    check_delay,
    check_job_id,
    check_limit_key,
    check_name,
    check_seconds,
)

BACKENDS_BY_SCHEME = {
    "memory": "queuekit.backends.memory:MemoryBackend",
    "sqlite": "queuekit.backends.sqlite:SQLiteBackend",
    "postgresql": "queuekit.backends.postgres:PostgresBackend",
    "postgres": "queuekit.backends.postgres:PostgresBackend",
    "redis": "queuekit.backends.redis:RedisBackend",
    "rediss": "queuekit.backends.redis:RedisBackend",
    "redis+sentinel": "queuekit.backends.redis:RedisBackend",
}
MAX_PAGE_SIZE = 1000
BULK_BATCH_SIZE = 1000
"""Jobs per statement or script of `replay_all`, `cancel_all` and `delete_all`."""
REPLAYABLE = (JobStatus.DEAD, JobStatus.CANCELLED)
CANCELLABLE = (JobStatus.PENDING, JobStatus.FAILED, JobStatus.RUNNING)
DELETABLE = tuple(status for status in JobStatus if status != JobStatus.RUNNING)


def connect(
    target: str | Backend,
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    middleware: Sequence[EnqueueMiddleware] = (),
) -> Queue:
    """Return a `Queue` on the backend a URL names (`memory://`, `sqlite:///jobs.db`, ...).

    Use it as `async with queuekit.connect(url) as queue:`; a `Backend` object works too.
    `middleware` wraps every enqueue (see `queuekit.middleware`).
    """
    if isinstance(target, Backend):
        return Queue(target, max_payload_bytes=max_payload_bytes, middleware=middleware)
    if not isinstance(target, str):
        raise InvalidURLError(f"connect() takes a URL or a Backend, not {type(target).__name__}")
    try:
        scheme = urlsplit(target).scheme.lower()
    except ValueError as exc:
        raise InvalidURLError(f"malformed URL {target!r}: {exc}") from None
    location = BACKENDS_BY_SCHEME.get(scheme)
    if location is None:
        known = ", ".join(f"{name}://" for name in BACKENDS_BY_SCHEME)
        raise InvalidURLError(f"unknown URL scheme in {target!r}; queuekit knows {known}")
    module_name, class_name = location.split(":")
    backend_class: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return Queue(
        backend_class.from_url(target), max_payload_bytes=max_payload_bytes, middleware=middleware
    )


class Queue:
    """The handle on one backend: enqueue, inspect and repair jobs in any of its queues (each
    method's `queue` parameter names one); an async context manager."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        middleware: Sequence[EnqueueMiddleware] = (),
    ) -> None:
        self.backend = backend
        self.max_payload_bytes = max_payload_bytes
        self.middleware: list[EnqueueMiddleware] = [*default_enqueue_middleware(), *middleware]
        """Wraps every `enqueue` and `enqueue_many`, the first outermost: tracing's when
        OpenTelemetry is installed, then those given (see `queuekit.middleware`)."""
        self._opened = 0

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect and migrate; nested `async with` blocks share one connection."""
        if self._opened == 0:
            await self.backend.open()
        self._opened += 1

    async def close(self) -> None:
        self._opened -= 1
        if self._opened == 0:
            await self.backend.close()

    # Producing

    async def enqueue(
        self,
        type: str,
        payload: JSON = None,
        *,
        connection: object | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> Job:
        """Store one job and return it; with a live `unique_key`, return the job holding it.

        The options (`queue`, `priority`, `delay` or `run_at`, `unique_key`, `max_attempts`,
        `id`, `headers`) are described in `queuekit.options.OPTIONS`; `queue` is the name of
        the queue the job joins. `headers` are str-to-str metadata stored beside the payload;
        with OpenTelemetry installed, the current trace context is added to them (keys you pass
        win). The job goes through `middleware` on its way to the backend.

        On PostgreSQL and SQLite, `connection=` (your own connection, inside a transaction you
        opened: asyncpg, SQLAlchemy's async on asyncpg, aiosqlite) enqueues in that
        transaction: the job exists only if it commits. Anything else raises
        `InvalidConnectionError`.
        """
        transactional = None if connection is None else self._transactional()
        request = new_job(type, payload, max_payload_bytes=self.max_payload_bytes, **options)
        (job,) = await self._store([request], transactional, connection)
        return job

    async def enqueue_many(
        self, jobs: Iterable[NewJob], *, connection: object | None = None
    ) -> list[Job]:
        """Store many jobs made with `queuekit.new_job(...)`, in one round trip.

        Headers (`new_job(..., headers=...)`), `connection=` and `middleware` work as for
        `enqueue`.
        """
        transactional = None if connection is None else self._transactional()
        requests = list(jobs)
        for request in requests:
            if not isinstance(request, NewJob):
                raise InvalidOptionError("enqueue_many takes jobs made by queuekit.new_job(...)")
            size = len(request.payload_json.encode("utf-8"))
            if size > self.max_payload_bytes:
                raise PayloadTooLargeError(
                    f"payload is {size} bytes encoded, over the limit of {self.max_payload_bytes}"
                )
        if not requests:
            return []
        return await self._store(requests, transactional, connection)

    async def _store(
        self,
        new_jobs: list[NewJob],
        transactional: TransactionalBackend | None,
        connection: object | None,
    ) -> list[Job]:
        """Store `new_jobs` through the middleware, in `connection`'s transaction if given."""
        store: CallEnqueue = (
            self.backend.enqueue_many
            if transactional is None
            else partial(transactional.enqueue_in_transaction, connection)
        )
        if self.middleware:
            store = chain_enqueue(self.middleware, store)
        return await store(new_jobs)

    def _transactional(self) -> TransactionalBackend:
        if not isinstance(self.backend, TransactionalBackend):
            raise InvalidConnectionError(
                "connection= (enqueue inside your own transaction) needs the PostgreSQL or "
                f"SQLite backend; {type(self.backend).__name__} does not support it"
            )
        return self.backend

    # Results

    async def result(self, job_id: str, *, timeout: float | timedelta | None = None) -> JSON:
        """Wait for a job to finish and return its result.

        Raises `JobFailedError` if it ended dead or cancelled, `TimeoutError` if it is still
        unfinished after `timeout`, and `JobNotFoundError` if there is no such job.
        """
        seconds = float("inf") if timeout is None else check_seconds(timeout, "timeout")
        job = await self.get_job(job_id)
        if job.status not in TERMINAL_STATUSES:
            finished = await self.backend.wait_for_outcome(job_id, seconds)
            if finished is None:
                if await self.backend.get_job(job_id) is None:
                    raise JobNotFoundError(f"no job with id {job_id!r}")
                raise TimeoutError(f"job {job_id} did not finish within {seconds} s")
            job = finished
        if job.status != JobStatus.COMPLETED:
            raise JobFailedError(f"job {job.id} ended {job.status}: {job.last_error}", job)
        return job.result

    # Inspecting

    async def get_job(self, job_id: str) -> Job:
        """The job with this id; `JobNotFoundError` if there is none."""
        job = await self.backend.get_job(_lookup(job_id))
        if job is None:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return job

    async def list_jobs(
        self,
        *,
        queue: str | None = None,
        status: JobStatus | str | None = None,
        type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        """Jobs newest first, of one queue, status and task type if given; pass the page's
        `next_cursor` to get the next page."""
        if queue is not None:
            check_name(queue)
        if type is not None:
            check_name(type, "task type")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidOptionError(f"limit must be from 1 to {MAX_PAGE_SIZE}")
        if cursor is not None and not (
            isinstance(cursor, str) and CURSOR_PATTERN.fullmatch(cursor)
        ):
            raise InvalidOptionError(f"bad cursor {cursor!r}: pass a page's next_cursor back")
        return await self.backend.list_jobs(
            queue=queue, status=_status(status), type=type, limit=limit, cursor=cursor
        )

    async def list_queues(self) -> list[str]:
        return await self.backend.list_queues()

    async def stats(self, queue: str = "default") -> QueueStats:
        counts = await self.backend.stats(check_name(queue))
        paused = queue in await self.backend.paused_queues()
        return QueueStats.from_counts(queue, counts, paused=paused)

    # Pausing

    async def pause(self, queue: str) -> None:
        """Stop workers (on every host) claiming from `queue`; enqueueing still works."""
        await self.backend.pause(check_name(queue))

    async def resume(self, queue: str) -> None:
        """Let workers claim from `queue` again."""
        await self.backend.resume(check_name(queue))

    async def paused_queues(self) -> set[str]:
        return await self.backend.paused_queues()

    # Flow control

    async def set_limits(self, queue: str, limits: Limits | None) -> None:
        """Limit how much of `queue` runs and starts, across every worker on every host (see
        `Limits`); None removes the limits. Running workers apply them from their next claim."""
        if limits is not None and not isinstance(limits, Limits):
            raise InvalidOptionError("limits must be a queuekit.Limits or None")
        await self.backend.set_limits(check_name(queue), limits)

    async def limits(self) -> dict[str, Limits]:
        """Every queue's limits, by queue name."""
        return await self.backend.get_limits()

    async def limit_usage(self, queue: str = "default") -> LimitUsage:
        """How much of `queue`'s limits is in use now."""
        return await self.backend.limit_usage(check_name(queue))

    async def hold(self, queue: str, seconds: float | timedelta, *, key: str | None = None) -> None:
        """Let no worker start a job of `queue` (only those of `key`, if given) for `seconds`,
        as a handler's `RateLimited` does; a longer hold already in place stays."""
        await self.backend.hold(
            check_name(queue),
            None if key is None else check_limit_key(key),
            check_delay(seconds, "a hold"),
        )

    # Repairing

    async def cancel(self, job_id: str) -> Job:
        """Cancel a job that has not finished; a running one is stopped by its worker."""
        return _found(await self.backend.cancel(_lookup(job_id)), job_id)

    async def replay(self, job_id: str) -> Job:
        """Run a dead or cancelled job again, attempts reset; any other job is left alone."""
        return _found(await self.backend.replay(_lookup(job_id)), job_id)

    async def delete_job(self, job_id: str) -> bool:
        """Delete a job that is not running; False if it is unknown. A running job raises
        `JobRunningError` (cancel it first)."""
        try:
            checked = _lookup(job_id)
        except JobNotFoundError:
            return False
        return await self.backend.delete_job(checked)

    async def purge(self, queue: str, status: JobStatus | str) -> int:
        """Delete every job of `queue` in `status` (not `running`); returns how many."""
        checked = _status(status)
        if checked is None or checked == JobStatus.RUNNING:
            raise InvalidOptionError("purge takes a status other than running")
        return await self.delete_all(queue=check_name(queue), status=checked)

    # Bulk repairs: each is one backend operation, in batches of BULK_BATCH_SIZE jobs (one
    # statement or script each, so none holds a lock for long), oldest job first.

    async def replay_all(
        self,
        *,
        queue: str | None = None,
        type: str | None = None,
        status: JobStatus | str | None = None,
        on_progress: Callable[[int], object] | None = None,
    ) -> int:
        """Replay every dead or cancelled job (`status`: one of the two; None: both) of `queue`
        and `type` if given, as `replay` does: a job whose unique key a live job holds stays.

        Calls `on_progress(replayed so far)` after each batch; returns how many were replayed.
        """
        return await self._in_batches(
            self.backend.replay_batch, REPLAYABLE, "replay_all", queue, type, status, on_progress
        )

    async def cancel_all(
        self,
        *,
        queue: str | None = None,
        type: str | None = None,
        status: JobStatus | str | None = None,
        on_progress: Callable[[int], object] | None = None,
    ) -> int:
        """Cancel every pending, failed or running job (`status`: one of those; None: all
        three) of `queue` and `type` if given, as `cancel` does; returns how many.

        Calls `on_progress(cancelled so far)` after each batch.
        """
        return await self._in_batches(
            self.backend.cancel_batch, CANCELLABLE, "cancel_all", queue, type, status, on_progress
        )

    async def delete_all(
        self,
        *,
        queue: str | None = None,
        type: str | None = None,
        status: JobStatus | str | None = None,
        on_progress: Callable[[int], object] | None = None,
    ) -> int:
        """Delete every job that is not running (`status`: one of those; None: all of them)
        of `queue` and `type` if given; returns how many.

        Calls `on_progress(deleted so far)` after each batch.
        """
        return await self._in_batches(
            self.backend.delete_batch, DELETABLE, "delete_all", queue, type, status, on_progress
        )

    async def _in_batches(
        self,
        run: Callable[..., Awaitable[Batch]],
        allowed: Sequence[JobStatus],
        what: str,
        queue: str | None,
        type: str | None,
        status: JobStatus | str | None,
        on_progress: Callable[[int], object] | None,
    ) -> int:
        if queue is not None:
            check_name(queue)
        if type is not None:
            check_name(type, "task type")
        checked = _status(status)
        if checked is not None and checked not in allowed:
            raise InvalidOptionError(
                f"{what} takes a status of {', '.join(allowed)} (or none for all), not {checked}"
            )
        total = 0
        for each in allowed if checked is None else [checked]:
            where = JobFilter(each, queue=queue, type=type)
            after: int | None = 0
            while after is not None:
                batch = await run(where, after=after, limit=BULK_BATCH_SIZE)
                total += batch.changed
                after = batch.after
                if on_progress is not None:
                    on_progress(total)
        return total

    async def prune(
        self,
        older_than: float | timedelta,
        statuses: Sequence[JobStatus | str] = tuple(TERMINAL_STATUSES),
    ) -> int:
        """Delete finished jobs (by default all terminal states) older than `older_than`."""
        checked = [_status(status) for status in statuses]
        if any(status not in TERMINAL_STATUSES for status in checked):
            raise InvalidOptionError(
                "prune takes only terminal statuses: completed, dead, cancelled"
            )
        return await self.backend.prune(
            check_seconds(older_than, "older_than"), [s for s in checked if s is not None]
        )


def _status(value: JobStatus | str | None) -> JobStatus | None:
    if value is None:
        return None
    try:
        return JobStatus(value)
    except ValueError:
        known = ", ".join(status.value for status in JobStatus)
        raise InvalidOptionError(f"unknown status {value!r}; use one of {known}") from None


def _lookup(job_id: object) -> str:
    """`job_id` if a job can have it; no job has any other id (`JobNotFoundError`)."""
    try:
        return check_job_id(job_id)
    except InvalidNameError as exc:
        raise JobNotFoundError(f"no job with id {job_id!r}: {exc}") from None


def _found(job: Job | None, job_id: str) -> Job:
    if job is None:
        raise JobNotFoundError(f"no job with id {job_id!r}")
    return job


__all__ = ["Queue", "connect"]

"""`Queue`, the handle applications hold, and `connect()`, which picks a backend from a URL."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Self, TypedDict, Unpack
from urllib.parse import urlsplit

from .activity import MAX_MINUTES, ActivityRecorder, Minute
from .backend import Backend, Batch, JobFilter, TransactionalBackend
from .batches import BatchCounts
from .errors import (
    InvalidConnectionError,
    InvalidOptionError,
    InvalidURLError,
    JobFailedError,
    JobNotFoundError,
    PayloadTooLargeError,
)
from .events import BUFFER_EVENTS, EventFilter, EventKind, EventOutbox, EventStream
from .job import JSON, TERMINAL_STATUSES, Job, JobPage, JobStatus, NewJob
from .limits import Limits, LimitUsage
from .lookups import found, lookup, status_of
from .middleware import CallEnqueue, EnqueueMiddleware, chain_enqueue, default_enqueue_middleware
from .options import EnqueueOptions, new_job
from .search import JobSearch, check_page
from .stats import QueueStats
from .validation import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    check_delay,
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
BULK_BATCH_SIZE = 1000
"""Jobs per statement or script of `replay_all`, `cancel_all`, `run_now_all` and `delete_all`."""
REPLAYABLE = (JobStatus.DEAD, JobStatus.CANCELLED)
CANCELLABLE = (JobStatus.WAITING, JobStatus.PENDING, JobStatus.FAILED, JobStatus.RUNNING)
RUNNABLE = (JobStatus.PENDING, JobStatus.FAILED)
"""The statuses of jobs waiting to run, which `run_now` makes due."""
DELETABLE = tuple(status for status in JobStatus if status != JobStatus.RUNNING)


class BulkOptions(TypedDict, total=False):
    """Which jobs a bulk repair (`replay_all`, `cancel_all`, ...) applies to: those of `queue`,
    `type` and `status` if given; `on_progress(changed so far)` is called after each batch."""

    queue: str | None
    type: str | None
    status: JobStatus | str | None
    on_progress: Callable[[int], object] | None


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
        self.activity_recorder = ActivityRecorder(backend)
        """Counts the jobs this handle enqueues (and a worker's attempts) into the backend's
        activity by minute."""
        self.event_outbox = EventOutbox(backend)  # this handle's events and its workers'
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
            await self.activity_recorder.write()
            await self.event_outbox.flush()
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
        `id`, `headers`, `limit_key`, `expires_at` or `expires_in`) are described in
        `queuekit.options.OPTIONS`; `queue` is the name of the queue the job joins. `headers`
        are str-to-str metadata stored beside the payload; with OpenTelemetry installed, the
        current trace context is added to them (keys you pass win). The job goes through
        `middleware` on its way to the backend.

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
        stored = await store(new_jobs)
        self.activity_recorder.enqueued(new_jobs, stored)
        if transactional is None:  # a job in the caller's transaction may yet roll back
            self.event_outbox.enqueued(new_jobs, stored)
        await self.activity_recorder.write_if_due()
        return stored

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
        job = await self.backend.get_job(lookup(job_id))
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
        error: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        workflow_id: str | None = None,
        batch_id: str | None = None,
    ) -> JobPage:
        """Jobs newest first, of one queue, status and task type if given; pass the page's
        `next_cursor` to get the next page. `error` keeps those whose last error holds that
        text (ASCII case ignored), `created_after` and `created_before` (aware datetimes)
        those created from the one and before the other, `workflow_id` a workflow's jobs and
        `batch_id` a batch's. A
        search may return a shorter page with a `next_cursor` (see `Backend.list_jobs`): only
        a page without one is the last."""
        check_page(queue, type, limit, cursor)
        search = JobSearch.of(error, created_after, created_before, workflow_id, batch_id)
        return await self.backend.list_jobs(
            queue=queue,
            status=status_of(status),
            type=type,
            limit=limit,
            cursor=cursor,
            search=search,
        )

    async def list_queues(self) -> list[str]:
        return await self.backend.list_queues()

    async def batch_counts(self, batch_id: str) -> BatchCounts:
        """How many jobs of the batch are in each state (`queuekit.batch`)."""
        return await self.backend.batch_counts(check_name(batch_id, "batch id"))

    async def stats(self, queue: str = "default") -> QueueStats:
        counts = await self.backend.stats(check_name(queue))
        paused = queue in await self.backend.paused_queues()
        return QueueStats.from_counts(queue, counts, paused=paused)

    async def activity(self, queue: str = "default", *, minutes: int = 60) -> list[Minute]:
        """The queue's activity by minute over the last `minutes` (at most `MAX_MINUTES`),
        oldest first: jobs enqueued, completed, failed and dead, and wait and run times, as
        every process that enqueues and runs its jobs counted them (see `queuekit.activity`).
        Minutes without any are left out."""
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int)
            or not 1 <= minutes <= MAX_MINUTES
        ):
            raise InvalidOptionError(f"minutes must be an int from 1 to {MAX_MINUTES}")
        return await self.backend.activity(check_name(queue), minutes)

    def events(
        self,
        *,
        queue: str | None = None,
        type: str | None = None,
        job_id: str | None = None,
        kinds: Sequence[EventKind | str] | None = None,
        buffer: int = BUFFER_EVENTS,
    ) -> EventStream:
        """Events of the jobs of `queue`, `type`, `job_id` and `kinds` if given, from every
        process, as they happen once it is iterated or entered (no replay): see `EventStream`;
        past `buffer` unread events, the oldest are dropped and one `dropped` event counts them."""
        return EventStream(self.backend, EventFilter.of(queue, type, job_id, kinds), buffer)

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
        job = found(await self.backend.cancel(lookup(job_id)), job_id)
        if job.status == JobStatus.CANCELLED:
            self.event_outbox.job(EventKind.CANCELLED, job, job.finished_at)
        return job

    async def replay(self, job_id: str) -> Job:
        """Run a dead or cancelled job again, attempts reset; any other job is left alone."""
        job = found(await self.backend.replay(lookup(job_id)), job_id)
        self.event_outbox.replayed(job)
        return job

    async def run_now(self, job_id: str) -> Job:
        """Make a job waiting to run (scheduled later, or failed and waiting for its retry)
        due now, its attempts kept; any other job is left alone. Returns the job as it now
        is: `pending` or `failed` means it is due."""
        job = found(await self.backend.run_now(lookup(job_id)), job_id)
        self.event_outbox.made_due(job)
        return job

    async def delete_job(self, job_id: str) -> bool:
        """Delete a job that is not running; False if it is unknown. A running job raises
        `JobRunningError` (cancel it first)."""
        try:
            checked = lookup(job_id)
        except JobNotFoundError:
            return False
        deleted = await self.backend.delete_job(checked)
        if deleted:
            self.event_outbox.deleted(checked)
        return deleted

    async def purge(self, queue: str, status: JobStatus | str) -> int:
        """Delete every job of `queue` in `status` (not `running`); returns how many."""
        checked = status_of(status)
        if checked is None or checked == JobStatus.RUNNING:
            raise InvalidOptionError("purge takes a status other than running")
        return await self.delete_all(queue=check_name(queue), status=checked)

    # Bulk repairs: each is one backend operation, in batches of BULK_BATCH_SIZE jobs (one
    # statement or script each, so none holds a lock for long), oldest job first.

    async def replay_all(self, **where: Unpack[BulkOptions]) -> int:
        """Replay every dead or cancelled job (`status`: one of the two; None: both) of `queue`
        and `type` if given, as `replay` does: a job whose unique key a live job holds stays.

        Calls `on_progress(replayed so far)` after each batch; returns how many were replayed.
        """
        return await self._in_batches(self.backend.replay_batch, REPLAYABLE, "replay_all", **where)

    async def cancel_all(self, **where: Unpack[BulkOptions]) -> int:
        """Cancel every waiting, pending, failed or running job (`status`: one of those; None:
        all four) of `queue` and `type` if given, as `cancel` does; returns how many.

        Calls `on_progress(cancelled so far)` after each batch.
        """
        return await self._in_batches(self.backend.cancel_batch, CANCELLABLE, "cancel_all", **where)

    async def delete_all(self, **where: Unpack[BulkOptions]) -> int:
        """Delete every job that is not running (`status`: one of those; None: all of them)
        of `queue` and `type` if given; returns how many.

        Calls `on_progress(deleted so far)` after each batch.
        """
        return await self._in_batches(self.backend.delete_batch, DELETABLE, "delete_all", **where)

    async def run_now_all(self, **where: Unpack[BulkOptions]) -> int:
        """Make every job waiting to run (`status`: pending or failed; None: both) of `queue`
        and `type` if given due now, as `run_now` does; returns how many. Calls
        `on_progress(made due so far)` after each batch."""
        return await self._in_batches(self.backend.run_now_batch, RUNNABLE, "run_now_all", **where)

    async def _in_batches(
        self,
        run: Callable[..., Awaitable[Batch]],
        allowed: Sequence[JobStatus],
        what: str,
        *,
        queue: str | None = None,
        type: str | None = None,
        status: JobStatus | str | None = None,
        on_progress: Callable[[int], object] | None = None,
    ) -> int:
        """The bulk repair `what` (`run`, batch after batch), of the jobs in the `allowed`
        statuses `BulkOptions` choose; one event of how many it changed, if any."""
        if queue is not None:
            check_name(queue)
        if type is not None:
            check_name(type, "task type")
        checked = status_of(status)
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
        if total:
            self.event_outbox.changed_in_bulk(what, queue, type, total)
        return total

    async def prune(
        self,
        older_than: float | timedelta,
        statuses: Sequence[JobStatus | str] = tuple(TERMINAL_STATUSES),
    ) -> int:
        """Delete finished jobs (by default all terminal states) older than `older_than`."""
        checked = [status_of(status) for status in statuses]
        if any(status not in TERMINAL_STATUSES for status in checked):
            raise InvalidOptionError(
                "prune takes only terminal statuses: completed, dead, cancelled"
            )
        return await self.backend.prune(
            check_seconds(older_than, "older_than"), [s for s in checked if s is not None]
        )


__all__ = ["Queue", "connect"]

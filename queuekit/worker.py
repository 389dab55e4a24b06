"""`Worker`: a pool that claims jobs, runs handlers, renews leases and shuts down losing nothing."""

from __future__ import annotations

import logging
import os
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from .activity import WRITE_EVERY
from .backend import EXPIRED
from .chores import repeat
from .context import JobContext, _current
from .errors import BackendUnavailableError, InvalidOptionError
from .events import RATE_LIMITED, SHUTDOWN, Event, EventKind, first_line
from .job import Attempt, JobStatus
from .leases import LeaseKeeper, Log, outlast_thread
from .limits import RateLimited
from .middleware import JobMiddleware, chain_job, default_job_middleware
from .outcomes import OUTCOME_EVENTS, JobReport, Outcome, describe
from .presence import DEFAULT_INTERVAL, Presence
from .process_pool import ProcessPool, pool_in_use
from .queue import Queue
from .recording import Recorder, RunningJob, settled_by_handler
from .retention import Retention
from .retry import Discard, Exponential, Retry
from .scheduler.engine import Scheduler
from .scheduler.schedule import Schedule
from .tasks import Task, Tasks
from .validation import check_name, check_seconds
from .watchdog import watch_loop_lag

logger = logging.getLogger("queuekit.worker")

MAX_BACK_OFF = 10.0
"""Seconds: the longest wait between claims while the backend keeps failing."""

StateHook = Callable[[dict[str, Any]], Awaitable[None]]
BeforeJobHook = Callable[[JobContext], Awaitable[None]]
AfterJobHook = Callable[[JobContext, JobReport], Awaitable[None]]


class Worker:
    """Runs jobs from the queues named in `queues` with at most `concurrency` at a time.

    `queue` is the `Queue` handle on the backend; `queues` is a list of queue names, or a
    mapping of name to its own limit. `async with Worker(queue, tasks) as worker:` runs it
    beside your code and shuts it down gracefully when the block ends; `await worker.run()`
    runs it in the foreground until SIGTERM or SIGINT. `schedules` (`queuekit.Schedule` values)
    are fired by a `Scheduler` running beside the pool. `middleware` wraps every handler run
    (see `queuekit.middleware`). `retention` (a `queuekit.Retention`) prunes finished jobs.
    """

    def __init__(
        self,
        queue: Queue,
        tasks: Tasks,
        *,
        queues: Sequence[str] | Mapping[str, int] = ("default",),
        concurrency: int = 10,
        lease: float | timedelta = 30.0,
        poll_interval: float | timedelta = 1.0,
        shutdown_timeout: float | timedelta = 30.0,
        rescue_interval: float | timedelta = 15.0,
        state: dict[str, Any] | None = None,
        on_startup: Sequence[StateHook] = (),
        on_shutdown: Sequence[StateHook] = (),
        before_job: Sequence[BeforeJobHook] = (),
        after_job: Sequence[AfterJobHook] = (),
        worker_id: str | None = None,
        schedules: Sequence[Schedule] = (),
        middleware: Sequence[JobMiddleware] = (),
        retention: Retention | None = None,
        registry_interval: float | timedelta = DEFAULT_INTERVAL,
        process_pool: ProcessPool | None = None,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidOptionError("concurrency must be an int >= 1")
        if isinstance(queues, str):
            raise InvalidOptionError("queues takes a list of names, not one string")
        limits = dict(queues) if isinstance(queues, Mapping) else dict.fromkeys(queues, concurrency)
        if not limits or any(not isinstance(limit, int) or limit < 1 for limit in limits.values()):
            raise InvalidOptionError("queues needs at least one queue, each with a limit >= 1")
        self.queue = queue
        self.tasks = tasks
        self.limits = {check_name(name): min(limit, concurrency) for name, limit in limits.items()}
        self.concurrency = concurrency
        self.lease = check_seconds(lease, "lease", allow_zero=False)
        self.poll_interval = check_seconds(poll_interval, "poll_interval", allow_zero=False)
        self.shutdown_timeout = check_seconds(shutdown_timeout, "shutdown_timeout")
        self.rescue_interval = check_seconds(rescue_interval, "rescue_interval", allow_zero=False)
        self.state: dict[str, Any] = {} if state is None else state
        self.on_startup = list(on_startup)
        self.on_shutdown = list(on_shutdown)
        self.before_job = list(before_job)
        self.after_job = list(after_job)
        self.middleware: list[JobMiddleware] = [*default_job_middleware(), *middleware]
        """Wraps every handler run, the first outermost: tracing's when OpenTelemetry is
        installed, then those given."""
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.processed = 0
        self._in_flight: dict[Attempt, RunningJob] = {}
        # Jitter spreads out the workers that meet one outage.
        self._back_off_delay = Exponential(
            self.poll_interval, max(self.poll_interval, MAX_BACK_OFF), jitter=0.5
        )
        self._recorder = Recorder(queue, self.lease)
        self._failures = 0
        """Claims and waits that failed in a row."""
        # Made when the worker runs: anyio's primitives need a running event loop.
        self._slot_freed: anyio.Event | None = None
        self._stopping = False
        self._stop_scope: anyio.CancelScope | None = None
        self._force_scope: anyio.CancelScope | None = None
        self._task_group: TaskGroup | None = None
        self._log = logging.LoggerAdapter(logger, {"worker_id": self.worker_id})
        self._leases = LeaseKeeper(
            queue.backend, self.lease, self._in_flight, self._log, queue.event_outbox
        )
        # Schedules fire beside the pool, in its task group (see queuekit.scheduler).
        self.scheduler = Scheduler(queue, schedules) if schedules else None
        if retention is not None and not isinstance(retention, Retention):
            raise InvalidOptionError("retention must be a queuekit.Retention")
        self.retention = retention
        if retention is not None:
            queue.activity_recorder.keep = retention.activity
        interval = check_seconds(registry_interval, "registry_interval", allow_zero=False)
        self.presence = Presence(self, interval)
        """Its entry in the worker registry (see queuekit.presence)."""
        self.process_pool = process_pool or ProcessPool()  # started by the first process task

    # Running

    async def __aenter__(self) -> Self:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        await self._task_group.start(self._serve)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        self.stop()
        return await self._task_group.__aexit__(exc_type, exc, traceback)

    async def run(self) -> None:
        """Run until SIGTERM or SIGINT, then shut down gracefully; a second signal forces it."""
        async with anyio.create_task_group() as group:

            async def on_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for signum in signals:
                        if self._stopping:
                            # Jobs left running are rescued once their leases expire.
                            self._log.warning("second %s: exiting now", signal.Signals(signum).name)
                            if self._force_scope is not None:
                                self._force_scope.cancel()
                        else:
                            self._log.info("%s: shutting down", signal.Signals(signum).name)
                            self.stop()

            group.start_soon(on_signals)
            await self._serve()
            group.cancel_scope.cancel()

    async def run_until_empty(self) -> int:
        """Run until no job is ready, running or waiting to retry; return how many attempts ran.

        Meant for tests and batch scripts: jobs enqueued with a delay not yet due are left.
        """
        before = self.processed
        await self._serve(until_empty=True)
        return self.processed - before

    def stop(self) -> None:
        """Stop claiming now; running jobs get `shutdown_timeout` to finish."""
        self._stopping = True
        if self._stop_scope is not None:
            self._stop_scope.cancel()

    async def _serve(
        self,
        *,
        until_empty: bool = False,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        self._stopping = False
        self._stop_scope = stop_scope = anyio.CancelScope()
        self._force_scope = force_scope = anyio.CancelScope()
        for hook in self.on_startup:
            await hook(self.state)
        self._log.info("worker started on queues %s", ", ".join(self.limits))
        try:
            with force_scope, pool_in_use(self.process_pool):
                async with anyio.create_task_group() as services:
                    services.start_soon(self._leases.run)
                    self._start_chores(services)
                    services.start_soon(watch_loop_lag, self.lease, self._log)
                    if self.scheduler is not None:
                        services.start_soon(self.scheduler.run)
                    task_status.started()
                    async with anyio.create_task_group() as jobs:
                        with stop_scope:
                            await self._claim_loop(jobs, until_empty)
                        self._stopping = True
                        await self._drain()
                    services.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.queue.activity_recorder.write()
            for hook in self.on_shutdown:
                with anyio.CancelScope(shield=True):
                    await hook(self.state)
            self._log.info("worker stopped")

    def _start_chores(self, services: TaskGroup) -> None:
        """The periodic chores beside the pool: the rescuer and the expirer (at the rescue
        interval); the pruner, given a retention."""
        report = "rescued %d jobs whose lease expired"
        rescuer = partial(repeat, name="rescue", report=report, level=logging.WARNING)
        services.start_soon(rescuer, self._rescue, self.rescue_interval, self._log)
        expirer = partial(repeat, name="expire", report="cancelled %d jobs that expired unstarted")
        services.start_soon(expirer, self._expire, self.rescue_interval, self._log)
        services.start_soon(self.presence.run)
        counts = "wrote the activity of %d queues"
        writer = partial(repeat, name="activity", report=counts, level=logging.DEBUG)
        services.start_soon(writer, self.queue.activity_recorder.write, WRITE_EVERY, self._log)
        if self.retention is not None:
            pruner = partial(repeat, name="prune", report="pruned %d finished jobs")
            prune = partial(self.retention.apply, self.queue)
            services.start_soon(pruner, prune, self.retention.interval, self._log)

    async def _rescue(self) -> int:
        """Take back the expired leases, announcing how many jobs failed and died (not which)."""
        rescued = await self.queue.backend.rescue()
        self.queue.event_outbox.rescued(rescued)
        return rescued.total

    async def _expire(self) -> int:
        """Cancel the jobs that expired unstarted, announcing how many expired since the last
        sweep (claims may have cancelled some: see `Backend.expire`), not which."""
        expired = await self.queue.backend.expire()
        if expired:
            self.queue.event_outbox.add(Event(EventKind.CANCELLED, count=expired, error=EXPIRED))
        return expired

    async def _drain(self) -> None:
        """Give running jobs `shutdown_timeout` to finish, then hand back those it can stop."""
        with anyio.move_on_after(self.shutdown_timeout, shield=True):
            await self._until_idle()
        if not self._in_flight:
            return
        self._leases.hand_back_all()
        with anyio.CancelScope(shield=True):
            await self._until_idle()

    async def _until_idle(self) -> None:
        while self._in_flight:
            await self._slot_event().wait()

    # Claiming

    def _free_slots(self) -> tuple[dict[str, int], int]:
        # A slot frees when its handler returns, and the outcome is written behind it (as
        # River's completer does), so a claim does not wait for writes; the lease is held
        # until the write. At most `concurrency` outcomes wait for theirs: then claims wait.
        handlers = [running for running in self._in_flight.values() if not running.recording]
        total = min(self.concurrency - len(handlers), 2 * self.concurrency - len(self._in_flight))
        busy: dict[str, int] = {}
        for running in handlers:
            busy[running.job.queue] = busy.get(running.job.queue, 0) + 1
        slots = {q: min(limit - busy.get(q, 0), total) for q, limit in self.limits.items()}
        return {q: n for q, n in slots.items() if n > 0}, total

    def _slot_freed_now(self) -> None:
        if self._slot_freed is not None:  # set already, or awaited: nobody needs a new one
            self._slot_freed.set()

    def _slot_event(self) -> anyio.Event:
        if self._slot_freed is None or self._slot_freed.is_set():
            self._slot_freed = anyio.Event()
        return self._slot_freed

    async def _claim_loop(self, jobs: TaskGroup, until_empty: bool) -> None:
        backend = self.queue.backend
        # Checked before each claim as well as by `stop`'s cancel: a claim is shielded, and a
        # loop that goes from one claim to the next reaches no point where a cancel lands.
        while not self._stopping:
            slots, total = self._free_slots()
            if not slots:
                await self._slot_event().wait()
                # Jobs tend to finish together: let the others land so one claim refills all.
                await anyio.lowlevel.checkpoint()
                continue
            ended_before = self.processed
            try:
                # A claim whose answer is dropped would strand its jobs until their leases expire.
                with anyio.CancelScope(shield=True):
                    claimed = await backend.claim(
                        slots, limit=total, lease=self.lease, worker_id=self.worker_id
                    )
            except Exception as exc:
                await self._back_off("claim", exc)
                continue
            self._failures = 0
            for job in claimed:
                self.queue.event_outbox.job(EventKind.STARTED, job, job.started_at)
                running = RunningJob(job)
                self._in_flight[running.attempt] = running
                jobs.start_soon(self._execute, running)
            if claimed:
                self._leases.changed()
                continue
            try:
                if until_empty and self._in_flight:
                    await self._slot_event().wait()
                elif until_empty and self.processed != ended_before:
                    # A job that ended while the claim was under way may have released others
                    # (its dependents) after the claim had looked: look again.
                    continue
                elif until_empty and not await self._retries_waiting():
                    return
                else:
                    await backend.wait_for_work(list(slots), self.poll_interval)
                    self._failures = 0
            except Exception as exc:
                await self._back_off("waiting for work", exc)

    async def _back_off(self, what: str, error: Exception) -> None:
        """A dropped connection or a backend fault must not end the worker: wait, go on.

        Each failure in a row doubles the wait, up to MAX_BACK_OFF.
        """
        self._failures += 1
        delay = self._back_off_delay(self._failures)
        if isinstance(error, BackendUnavailableError):
            self._log.warning("%s failed, retrying in %.2g s: %s", what, delay, error)
        else:
            self._log.exception("%s failed unexpectedly, retrying in %.2g s", what, delay)
        await anyio.sleep(delay)

    async def _retries_waiting(self) -> bool:
        for name in self.limits:  # a page of one job: stats would count the whole history
            page = await self.queue.backend.list_jobs(queue=name, status=JobStatus.FAILED, limit=1)
            if page.jobs:
                return True
        return False

    def _lose(self, attempt: Attempt) -> None:
        """Stop the handler of an attempt whose lease is lost (`queuekit.testing` injects it)."""
        self._leases.lose(attempt)

    # Running one job

    async def _execute(self, running: RunningJob) -> None:
        job = running.job
        context = JobContext(job=job, state=self.state, worker_id=self.worker_id, queue=self.queue)
        self._leases.reports[running.attempt] = context.reports
        fields = {"worker_id": self.worker_id, "job_id": job.id, "job_type": job.type}
        log = logging.LoggerAdapter(logger, {**fields, "queue": job.queue, "attempt": job.attempts})
        token = _current.set(context)
        try:
            for before in self.before_job:
                await before(context)
            outcome, error = await self._attempt(running, context, log)
        except Exception as exc:
            # A before_job hook failed: the job did not run; count it as a failed attempt.
            outcome, error = await self._record_failure(running, exc, log), exc
        finally:
            _current.reset(token)
            del self._in_flight[running.attempt]
            del self._leases.reports[running.attempt]
            self.processed += 1
            self._slot_freed_now()
        report = JobReport(job, outcome, running.age, error)
        self.queue.activity_recorder.attempt_ended(report)
        kind = OUTCOME_EVENTS.get(outcome)
        if kind is not None:
            text = None if error is None else first_line(f"{type(error).__name__}: {error}")
            self.queue.event_outbox.job(kind, job, error=text)
        for after in self.after_job:
            try:
                await after(context, report)
            except Exception:
                log.exception("after_job hook failed")

    async def _attempt(
        self,
        running: RunningJob,
        context: JobContext,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> tuple[Outcome, BaseException | None]:
        job = running.job
        task = self.tasks.get(job.type)
        if task is None:
            error = f"UnknownTaskError: no handler registered for type {job.type}"
            log.error("%s: moving job to dead", error)
            return await self._recorder.fail(running, error, None, log), None
        result: Any = None
        failure: BaseException | None = None
        with running.scope:
            try:
                if self.middleware:
                    run = partial(self._run_handler, task, running)
                    result = await chain_job(self.middleware, context, run)()
                else:
                    result = await self._run_handler(task, running)
            except TimeoutError as exc:
                failure = (
                    exc if str(exc) else TimeoutError(f"job exceeded its {task.timeout} s timeout")
                )
            except Exception as exc:
                failure = exc
        if running.thread.running and not await outlast_thread(running, log):
            return Outcome.ABANDONED, None
        running.recording = True
        self._slot_freed_now()
        if context.completed or context.lease_lost:
            # The handler's own transaction settled the attempt: a second write would be refused.
            return settled_by_handler(context, result, failure, log), None
        if running.lost:
            log.warning(
                "lease lost after %.3g s (rescued elsewhere or cancelled): handler stopped",
                running.age,
            )
            return Outcome.LOST, None
        if running.returned:
            return await self._snooze(running, 0.0, Outcome.RETURNED, SHUTDOWN, log), None
        if isinstance(failure, RateLimited):
            await self._recorder.hold(running, failure, log)
        if isinstance(failure, Retry) and not failure.count_attempt:
            note = RATE_LIMITED if isinstance(failure, RateLimited) else None
            return await self._snooze(running, failure.after, Outcome.SNOOZED, note, log), None
        if isinstance(failure, Discard):
            return await self._recorder.fail(
                running, f"Discard: {failure.reason}", None, log
            ), failure
        if failure is not None:
            return await self._record_failure(running, failure, log), failure
        return await self._recorder.complete(running, result, log)

    async def _snooze(
        self, running: RunningJob, delay: float, outcome: Outcome, note: str | None, log: Log
    ) -> Outcome:
        """Hand the job back without using an attempt, and announce it (`note`: why)."""
        outcome = await self._recorder.snooze(running, delay, outcome, log)
        if outcome is not Outcome.LOST:
            self.queue.event_outbox.job(EventKind.SNOOZED, running.job, note=note)
        return outcome

    async def _run_handler(self, task: Task[Any, Any], running: RunningJob) -> Any:
        """The handler's run on the job's payload, within the task's timeout."""
        return await task.run(running.job.payload, thread=running.thread, timeout=task.timeout)

    async def _record_failure(
        self,
        running: RunningJob,
        failure: BaseException,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> Outcome:
        job = running.job
        task = self.tasks.get(job.type)
        if isinstance(failure, Retry):
            retry_in: float | None = failure.after
        else:
            retry_in = task.retry_in(failure, job.attempts) if task is not None else 0.0
        outcome = await self._recorder.fail(running, describe(failure), retry_in, log)
        if outcome is not Outcome.LOST:
            log.warning("attempt failed (%s): %s", outcome, failure)
        return outcome


__all__ = ["AfterJobHook", "BeforeJobHook", "JobReport", "Outcome", "StateHook", "Worker"]

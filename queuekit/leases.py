"""`LeaseKeeper`: a worker's heartbeat, which renews its leases, writes its jobs' progress and
stops the handlers of jobs lost, at once when the backend pushes a cancel."""

from __future__ import annotations

import logging
from typing import TypeAlias

import anyio

from .backend import Backend
from .errors import BackendUnavailableError
from .events import EventKind, EventOutbox
from .job import Attempt, Job
from .progress import ProgressReports, ProgressUpdate
from .recording import RunningJob

Log: TypeAlias = "logging.LoggerAdapter[logging.Logger]"

REWAIT_AFTER = 0.05
"""Seconds at least from one wait for losses to the next that new claims start. Claims come
hundreds of times a second and each wait costs tasks and a cancel; a job cancelled before a
wait covers it is woken as soon as one does (`LossWaiters` keeps the wake-up), so its handler
stops late by this much at most."""


class LeaseKeeper:
    """Heartbeats the attempts of `in_flight` (the worker's, which calls `changed` once it has
    added jobs) every third of `lease`, and as soon as `Backend.wait_for_loss` says one of them
    may have lost its job. `reports` holds each attempt's progress, sent with the next
    heartbeat when it changed."""

    def __init__(
        self,
        backend: Backend,
        lease: float,
        in_flight: dict[Attempt, RunningJob],
        log: Log,
        events: EventOutbox | None = None,
    ) -> None:
        self.backend = backend
        self.events = events
        """Where the progress written is announced, if anywhere."""
        self.lease = lease
        self.in_flight = in_flight
        self.reports: dict[Attempt, ProgressReports] = {}
        self._log = log
        self._changed: anyio.Event | None = None
        """Set by `changed`; made by the running loop (anyio's primitives need one)."""

    def changed(self) -> None:
        """Jobs were claimed: wait for the loss of the new set. (A job that ended may stay
        in a wait: only a cancel wakes one, and it would not be in flight any more.)"""
        if self._changed is not None:
            self._changed.set()

    async def run(self) -> None:
        while True:
            await self._wait(anyio.current_time() + self.lease / 3)
            if self.in_flight:
                await self.beat()

    async def _wait(self, deadline: float) -> None:
        """Until `deadline`, or until a job in flight may have been lost. A wait covers the
        jobs in flight when it starts: a claim starts another, so a job claimed meanwhile is
        covered too."""
        while (remaining := deadline - anyio.current_time()) > 0:
            self._changed = changed = anyio.Event()
            jobs = [running.job for running in self.in_flight.values()]
            if await self._told_or_changed(jobs, remaining, changed):
                return

    async def _told_or_changed(self, jobs: list[Job], timeout: float, changed: anyio.Event) -> bool:
        """True once the backend says one of `jobs` may be lost (or after `timeout`); False
        when the jobs in flight changed first (seen `REWAIT_AFTER` after the start at the
        earliest)."""
        rewait_at = anyio.current_time() + REWAIT_AFTER
        told = False
        async with anyio.create_task_group() as group:

            async def wait_for_loss() -> None:
                nonlocal told
                try:
                    if jobs:
                        await self.backend.wait_for_loss(jobs, timeout)
                    else:
                        await anyio.sleep(timeout)
                    told = True
                except Exception as exc:
                    # Without a push, the heartbeat's own cadence still finds the loss.
                    self._log.warning("waiting for cancels failed: %s", exc)
                    await anyio.sleep(timeout)
                    told = True
                group.cancel_scope.cancel()

            async def on_change() -> None:
                await changed.wait()
                await anyio.sleep_until(rewait_at)
                group.cancel_scope.cancel()

            group.start_soon(wait_for_loss)
            group.start_soon(on_change)
        return told

    async def beat(self) -> None:
        """Renew every lease in flight and write the progress reported since the last beat;
        stop the handlers of the attempts that lost their jobs."""
        attempts = list(self.in_flight)
        updates: dict[Attempt, ProgressUpdate] = {}
        reporters: dict[Attempt, ProgressReports] = {}
        for attempt in attempts:
            reports = self.reports.get(attempt)
            update = None if reports is None else reports.pending()
            if reports is not None and update is not None:
                updates[attempt], reporters[attempt] = update, reports
        try:
            lost = await self.backend.heartbeat(attempts, lease=self.lease, progress=updates)
        except BackendUnavailableError as exc:
            self._log.warning("heartbeat failed; the leases are renewed next time: %s", exc)
            return
        except Exception:
            self._log.exception("heartbeat failed; the leases are renewed next time")
            return
        for attempt, update in updates.items():
            if attempt not in lost:
                reporters[attempt].written(update)
                self._announce(attempt, update)
        for attempt in lost:
            self.lose(attempt)

    def _announce(self, attempt: Attempt, update: ProgressUpdate) -> None:
        running = self.in_flight.get(attempt)
        if self.events is not None and running is not None and update.fraction is not None:
            progress = EventKind.PROGRESS
            self.events.job(progress, running.job, progress=update.fraction, note=update.note)

    def lose(self, attempt: Attempt) -> None:
        """Stop the handler of an attempt whose lease is lost."""
        running = self.in_flight.get(attempt)
        if running is not None:
            running.lost = True
            running.scope.cancel()

    def hand_back_all(self) -> None:
        """At shutdown: stop every handler, so that its worker returns its job to the queue
        (but for those in threads, which cannot be stopped)."""
        in_threads = [
            running.job.id for running in self.in_flight.values() if running.thread.running
        ]
        self._log.warning(
            "shutdown timeout: returning %d running jobs", len(self.in_flight) - len(in_threads)
        )
        if in_threads:
            self._log.error(
                "shutdown timeout: %d jobs still run in threads, which Python cannot stop: %s; "
                "they are not handed back (each is rescued once its lease expires), and this "
                "process cannot exit before those threads return",
                len(in_threads),
                ", ".join(in_threads),
            )
        for running in self.in_flight.values():
            running.returned = True
            running.scope.cancel()
            if running.thread_wait is not None:
                running.thread_wait.cancel()


async def outlast_thread(running: RunningJob, log: Log) -> bool:
    """Keep the lease until a stopped sync handler's thread returns, so that its job never
    runs again beside it; False if shutdown could wait no longer."""
    if not running.returned:
        log.warning(
            "the handler was stopped after %.3g s (%s) but its thread runs on, as Python "
            "cannot stop a thread: the lease is kept until it returns",
            running.age,
            "its lease was lost" if running.lost else "it ran past its timeout",
        )
        running.thread_wait = anyio.CancelScope()  # made now: `returned` was read just now
        with running.thread_wait:
            await running.thread.ended()
    return not running.thread.running

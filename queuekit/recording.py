"""Recording an attempt's outcome: storable texts, written through a backend's blips."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import anyio

from .context import JobContext
from .errors import BackendUnavailableError, QueueKitError
from .job import Job
from .limits import RateLimited
from .outcomes import Outcome, describe, storable
from .queue import Queue
from .retry import Exponential, next_retry
from .threads import HandlerThread
from .validation import encode_json

T = TypeVar("T")
Log: TypeAlias = "logging.LoggerAdapter[logging.Logger]"

FIRST_WRITE_RETRY = 0.05
"""Seconds before the first retry of an outcome the backend could not take."""


class RunningJob:
    """A claimed job in this worker: how to stop its handler, and what became of its lease.

    A plain class with slots, as one is made for every job a worker runs.
    """

    __slots__ = (
        "attempt",
        "job",
        "lost",
        "recording",
        "returned",
        "scope",
        "started",
        "thread",
        "thread_wait",
    )

    def __init__(self, job: Job) -> None:
        self.job = job
        self.attempt = job.attempt
        """Made once: `Job.attempt` builds a new one each time it is read."""
        self.scope = anyio.CancelScope()
        self.thread = HandlerThread()
        self.thread_wait: anyio.CancelScope | None = None
        """Holds the lease while a stopped sync handler's thread runs on; shutdown cancels it."""
        self.started = time.monotonic()
        self.lost = False
        self.recording = False
        """The handler is done and its outcome is being written: its slot is free, its lease
        still held."""
        self.returned = False

    @property
    def age(self) -> float:
        """Seconds since the job was claimed."""
        return time.monotonic() - self.started


class _NotWritten(Exception):
    """An outcome the backend could not take before the worker gave up on it."""


class Recorder:
    """Writes the outcomes of one worker's attempts.

    While the backend is unreachable, a write is retried with a backoff that grows
    exponentially with jitter, up to a third of the lease (how often the heartbeat renews it).
    """

    def __init__(self, queue: Queue, lease: float) -> None:
        self.queue = queue
        self._retry_delay = Exponential(min(FIRST_WRITE_RETRY, lease / 3), lease / 3, jitter=0.5)

    async def complete(
        self, running: RunningJob, result: Any, log: Log
    ) -> tuple[Outcome, BaseException | None]:
        attempt = running.attempt
        try:
            result_json = (
                None
                if result is None
                else encode_json(result, limit=self.queue.max_payload_bytes, what="result")
            )
        except QueueKitError as exc:
            # Running it again would give the same result: a bug to fix, not a fault to retry.
            return await self.fail(running, describe(exc), None, log), exc
        try:
            status = await self._write(
                running, lambda: self.queue.backend.complete(attempt, result_json), log
            )
        except _NotWritten:
            return Outcome.LOST, None
        except Exception as exc:
            # The backend refused this result itself: say why, rather than let the lease run out.
            log.exception("the backend refused the result: moving job to dead")
            error = f"the result could not be stored: {describe(exc)}"
            return await self.fail(running, error, None, log), exc
        if status is None:
            self._refused(running, "completion", log)
            return Outcome.LOST, None
        log.debug("completed")
        return Outcome.COMPLETED, None

    async def fail(
        self,
        running: RunningJob,
        error: str,
        retry_in: float | None,
        log: Log,
    ) -> Outcome:
        """Record a failed attempt with `error`, made storable: retried in `retry_in` seconds if
        attempts are left (`next_retry` decides), else dead (always, with None)."""
        attempt = running.attempt
        backend = self.queue.backend
        text = storable(error)
        retry_in = next_retry(running.job, retry_in)
        try:
            status = await self._write(
                running, lambda: backend.fail(attempt, text, retry_in=retry_in), log
            )
        except _NotWritten:
            return Outcome.LOST
        except Exception:
            # A store whose encoding cannot hold every character (a LATIN1 database, say)
            # refuses the text: the job still gets its failure, in plain ASCII.
            log.exception("the backend refused the error text: storing it as ASCII")
            ascii_text = text.encode("ascii", "backslashreplace").decode("ascii")
            try:
                status = await self._write(
                    running, lambda: backend.fail(attempt, ascii_text, retry_in=retry_in), log
                )
            except Exception:
                log.exception("could not record the failure; the job runs again once rescued")
                return Outcome.LOST
        if status is None:
            self._refused(running, "failure", log)
            return Outcome.LOST
        return Outcome.of(status)

    async def hold(self, running: RunningJob, limited: RateLimited, log: Log) -> None:
        """Hold the job's key (or its queue) for the whole fleet, as `RateLimited` asks."""
        job = running.job
        key = None if limited.whole_queue else job.limit_key
        try:
            await self.queue.backend.hold(job.queue, key, limited.after)
        except Exception:
            log.exception("could not hold the %s; the job is snoozed all the same", key or "queue")

    async def snooze(
        self,
        running: RunningJob,
        delay: float,
        outcome: Outcome,
        log: Log,
    ) -> Outcome:
        attempt = running.attempt
        try:
            status = await self._write(
                running, lambda: self.queue.backend.snooze(attempt, delay), log
            )
        except _NotWritten:
            return Outcome.LOST
        except Exception:
            log.exception("could not hand the job back; it runs again once rescued")
            return Outcome.LOST
        if status is None:
            self._refused(running, "snooze" if outcome is Outcome.SNOOZED else "hand-back", log)
            return Outcome.LOST
        return outcome

    def _refused(self, running: RunningJob, what: str, log: Log) -> None:
        log.warning(
            "lease lost: the %s was refused after the attempt ran %.3g s (the lease expired and "
            "the job was rescued, or it was cancelled); nothing was recorded",
            what,
            running.age,
        )

    async def _write(
        self,
        running: RunningJob,
        call: Callable[[], Awaitable[T]],
        log: Log,
    ) -> T:
        """Record an outcome, retrying while the backend is unreachable and the lease is held.

        An outcome dropped on a blip would make a finished job run again; the heartbeat keeps
        renewing the lease meanwhile. Raises `_NotWritten` once the lease is reported lost or
        shutdown can wait no longer (then the job runs again once its lease expires), and
        whatever else the backend raises (it refused the call itself).
        """
        tries = 0
        while True:
            try:
                # An outcome whose answer is dropped would leave the worker guessing.
                with anyio.CancelScope(shield=True):
                    return await call()
            except (BackendUnavailableError, OSError) as exc:
                if running.lost or running.returned:
                    log.warning(
                        "could not record the outcome; the job runs again once rescued: %s", exc
                    )
                    raise _NotWritten from exc
                tries += 1
                delay = self._retry_delay(tries)
                log.warning(
                    "could not record the outcome, retrying in %.2g s while the lease is held: %s",
                    delay,
                    exc,
                )
                await anyio.sleep(delay)


def settled_by_handler(
    context: JobContext, result: Any, failure: BaseException | None, log: Log
) -> Outcome:
    """The outcome of an attempt settled by `current_job().transaction(...)`, with what the
    handler did after its block (which cannot change it) logged."""
    if context.lease_lost:
        log.warning("lease lost: the handler's transaction was rolled back; nothing recorded")
        return Outcome.LOST
    if failure is not None:
        log.warning("the handler failed after its transaction completed the job: %s", failure)
    elif result is not None:
        log.warning("the handler's return value is dropped: set the transaction's result")
    log.debug("completed in the handler's transaction")
    return Outcome.COMPLETED

"""The running job's context, reachable from inside a handler with `current_job()`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from .backend import FencedBackend
from .batches import BATCH_HEADER, BatchCounts
from .errors import InvalidOptionError, LeaseLostError
from .job import JSON, Job
from .parent_results import ParentOutcome, read_parents
from .progress import ProgressReports
from .validation import encode_json

if TYPE_CHECKING:
    from .queue import Queue


@dataclass(eq=False)
class Completion:
    """What `JobContext.transaction` completes the job with: set `result` inside the block."""

    result: Any = None


@dataclass(eq=False)
class _Recorded:
    """Whether the handler itself settled the attempt, inside its own transaction; and its
    parents' outcomes, once read."""

    completed: bool = False
    lease_lost: bool = False
    parents: list[ParentOutcome] | None = None
    """The parents' outcomes, once read: they have all finished, so they no longer change."""


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler may want beyond its arguments: the job itself and the worker's state."""

    job: Job
    state: dict[str, Any]
    """Shared by every job of one worker; startup hooks fill it (an HTTP client, a pool...)."""
    worker_id: str
    queue: Queue | None = None
    """The queue the job was claimed from; `transaction` completes the job through it."""
    reports: ProgressReports = field(default_factory=ProgressReports, repr=False)
    """What `set_progress` and `set_output` reported, which the worker's heartbeat sends."""
    _recorded: _Recorded = field(default_factory=_Recorded, repr=False)

    def set_progress(self, fraction: float, note: str | None = None) -> None:
        """Report how much of its work the handler has done: `fraction` from 0 to 1, and a
        short `note` (at most `MAX_NOTE_CHARS` characters; None clears it).

        No round trip: the worker's next heartbeat writes the latest report, if it changed
        (fenced: never once this attempt has lost the job), and `get_job` reads it as
        `job.progress` and `job.progress_note`. A fraction that is not a finite number from
        0 to 1, or a note too long, raises `InvalidOptionError`.
        """
        self.reports.set_progress(fraction, note)

    def set_output(self, value: JSON) -> None:
        """Report partial output, a JSON value of at most `MAX_OUTPUT_BYTES` encoded, written
        as `set_progress` is and read as `job.output`; the latest one wins. A value JSON
        cannot carry raises `InvalidPayloadError`, a larger one `PayloadTooLargeError`."""
        self.reports.set_output(value)

    async def parents(self) -> list[ParentOutcome]:
        """How this job's parents (`after=`, a workflow's edges) ended, in their order: each
        one's id, type, status, result and error. A parent whose edge says `OnFailure.IGNORE`
        is left out unless it completed.

        Read from the backend once per attempt. Their results and errors together, as JSON,
        are bounded by the queue's payload limit (`connect(max_payload_bytes=...)`, 1 MiB by
        default): beyond it, `ParentResultsTooLargeError`.
        """
        if self.queue is None:
            raise InvalidOptionError("current_job().parents() needs the job's queue")
        if self._recorded.parents is None:
            self._recorded.parents = await read_parents(
                self.queue.backend, self.job.id, self.queue.max_payload_bytes
            )
        return list(self._recorded.parents)

    async def batch(self) -> BatchCounts:
        """The counts by state of the batch this job is a callback of (`queuekit.batch`), or
        else of the batch it belongs to; read from the backend at each call.

        A job that is neither raises `InvalidOptionError`.
        """
        batch_id = self.job.headers.get(BATCH_HEADER, self.job.batch_id)
        if self.queue is None or batch_id is None:
            raise InvalidOptionError("current_job().batch() is for a batch's jobs and callbacks")
        return await self.queue.batch_counts(batch_id)

    @property
    def lease_token(self) -> str:
        """This attempt's fencing token: random, unique to this claim of the job, and never
        valid again once the attempt has lost the job.

        Give it to downstream APIs and storage as the idempotency key of what this attempt
        does (a retry or a rescued run gets a new token; use `job.id` for once per job), or
        store it beside your writes and refuse writes that carry an older one.
        """
        return self.job.attempt.token

    @property
    def completed(self) -> bool:
        """True once a `transaction` block committed this job's completion."""
        return self._recorded.completed

    @property
    def lease_lost(self) -> bool:
        """True once a `transaction` block found that this attempt no longer holds the job."""
        return self._recorded.lease_lost

    @asynccontextmanager
    async def transaction(self, connection: object) -> AsyncIterator[Completion]:
        """Commit your writes on `connection` and this job's completion together, fenced.

        `connection` is your own connection to the queue's database (asyncpg for PostgreSQL,
        aiosqlite to the same file for SQLite), not in a transaction: the block opens one and
        commits it at its end, with the job completed (with `completion.result`) only if this
        attempt still holds the job. If it no longer does (its lease expired and it was rescued,
        or it was cancelled or replayed), everything rolls back and `LeaseLostError` is raised.
        Either way the worker records nothing more for this attempt. Memory and Redis queues
        raise `InvalidOptionError`.
        """
        backend = None if self.queue is None else self.queue.backend
        if not isinstance(backend, FencedBackend):
            raise InvalidOptionError(
                "current_job().transaction() needs the PostgreSQL or SQLite backend; "
                f"{type(backend).__name__} does not support it"
            )
        if self.completed or self.lease_lost:
            raise InvalidOptionError("this attempt was already settled by a transaction block")
        assert self.queue is not None
        completion = Completion()
        async with _settled_whole(backend.transaction(connection)):
            yield completion
            result_json = (
                None
                if completion.result is None
                else encode_json(
                    completion.result, limit=self.queue.max_payload_bytes, what="result"
                )
            )
            with anyio.CancelScope(shield=True):
                completed = await backend.complete_in_transaction(
                    connection, self.job.attempt, result_json
                )
            if not completed:
                self._recorded.lease_lost = True
                raise LeaseLostError(self.job.id)
        self._recorded.completed = True


@asynccontextmanager
async def _settled_whole(transaction: AbstractAsyncContextManager[None]) -> AsyncIterator[None]:
    """`transaction`, whose end (commit, or rollback) a cancel cannot cut short.

    A job cancelled while its handler's block runs is cancelled there; once the block is done,
    the completion's fence decides, and the commit or rollback runs to its end: cut off, it
    would leave the caller's connection in a state nobody knows, and the handler an error that
    depends on which came first.
    """
    await transaction.__aenter__()
    try:
        yield
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            if not await transaction.__aexit__(type(exc), exc, exc.__traceback__):
                raise
    else:
        with anyio.CancelScope(shield=True):
            await transaction.__aexit__(None, None, None)


_current: ContextVar[JobContext] = ContextVar("queuekit_current_job")


def current_job() -> JobContext:
    """The context of the job this handler runs; `LookupError` outside a handler."""
    return _current.get()

"""How an attempt ended, and the error text a worker stores for it, safe on every backend."""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass

from .events import EventKind
from .job import Job, JobStatus

MAX_ERROR_CHARS = 16_000
"""A stored error (type, message, traceback) keeps at most this many characters."""
MAX_TRACEBACK_CHARS = 8_000
ELISION = "\n...\n"


class Outcome(enum.StrEnum):
    """How one attempt ended, as the worker saw it."""

    COMPLETED = JobStatus.COMPLETED.value
    FAILED = JobStatus.FAILED.value
    """Failed with attempts left: it will run again after its backoff."""
    DEAD = JobStatus.DEAD.value
    SNOOZED = "snoozed"
    LOST = "lost"
    """The lease was lost (expired and rescued elsewhere, or the job was cancelled), or the
    outcome could not be written before the worker gave up: the job runs again once rescued."""
    RETURNED = "returned"
    """Interrupted by shutdown and handed back to the queue."""
    ABANDONED = "abandoned"
    """Shutdown could wait no longer for its sync handler's thread, which Python cannot stop:
    nothing was recorded and the job was not handed back; it is rescued once its lease expires."""

    @classmethod
    def of(cls, status: JobStatus) -> Outcome:
        """The outcome of an attempt whose recorded completion or failure left its job in
        `status` (`completed`, `failed` or `dead`)."""
        return cls(status.value)


OUTCOME_EVENTS = {
    Outcome.COMPLETED: EventKind.COMPLETED,
    Outcome.FAILED: EventKind.FAILED,
    Outcome.DEAD: EventKind.DEAD,
}
"""The events of the outcomes a worker writes (a lost attempt was settled elsewhere)."""


@dataclass(frozen=True, slots=True)
class JobReport:
    """What `after_job` hooks receive."""

    job: Job
    outcome: Outcome
    duration: float
    error: BaseException | None = None


def storable(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` as every backend stores it unchanged.

    Surrogate pairs are joined and lone surrogates become U+FFFD (no encoding holds them); NUL
    is written `\\x00` (PostgreSQL's text type refuses it); past `limit` characters the middle
    is cut, keeping the head and the tail.
    """
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = text.replace("\x00", "\\x00")
    if len(text) > limit:
        kept = (limit - len(ELISION)) // 2
        text = text[:kept] + ELISION + text[len(text) - kept :]
    return text


def describe(error: BaseException) -> str:
    """Type, message and a bounded traceback, storable."""
    try:
        message = str(error)
    except Exception:  # a hostile __str__ must not cost the job its recorded outcome
        message = "<str() of the error failed>"
    text = "".join(traceback.format_exception(error)).strip()
    if len(text) > MAX_TRACEBACK_CHARS:
        kept = MAX_TRACEBACK_CHARS // 2
        text = text[:kept] + ELISION + text[-kept:]
    return storable(f"{type(error).__name__}: {message}\n{text}")

"""Every error queuekit raises, in one hierarchy rooted at `QueueKitError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .job import Job


class QueueKitError(Exception):
    """Base class of every error queuekit raises on purpose."""


class ValidationError(QueueKitError, ValueError):
    """Input was rejected at the API boundary; nothing was stored."""


class InvalidNameError(ValidationError):
    """A queue, task type, table, schema or prefix name is empty, too long or unsafe."""


class InvalidPayloadError(ValidationError):
    """A payload or result is not a JSON value (NaN, sets, objects, lone surrogates...)."""


class PayloadValidationError(InvalidPayloadError):
    """A typed task's arguments or result do not match its handler's annotations."""


class PayloadTooLargeError(InvalidPayloadError):
    """A payload's JSON encoding is larger than the configured limit."""


class InvalidOptionError(ValidationError):
    """An enqueue or worker option is out of range (priority, attempts, delay, lease...)."""


class InvalidConnectionError(InvalidOptionError):
    """A caller's own connection cannot be used: another driver or database, closed, or not in
    the transaction state the call needs (`connection=` needs one open)."""


class JobExistsError(InvalidOptionError):
    """A job with the requested id exists already; `job_id` names it. Nothing was stored."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"a job with id {job_id!r} already exists")
        self.job_id = job_id


class UnknownParentError(InvalidOptionError):
    """A job waits for one (`after=`) that is neither stored nor earlier in the same
    `enqueue_many`; `job_id` names that parent. Nothing was stored."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} to wait for: enqueue a job's parents before it")
        self.job_id = job_id


class ParentResultsTooLargeError(QueueKitError):
    """A job's parents' results and errors together are larger, as JSON, than its queue's
    payload limit (`connect(max_payload_bytes=...)`), so they were not passed to it; `size`
    and `limit` are in bytes. Return smaller results (a reference to stored data)."""

    def __init__(self, job_id: str, size: int, limit: int) -> None:
        super().__init__(
            f"the parents' results of job {job_id!r} are {size} bytes as JSON, over the "
            f"limit of {limit}: return smaller results, such as a reference to stored data"
        )
        self.job_id = job_id
        self.size = size
        self.limit = limit


class InvalidURLError(ValidationError):
    """A connection URL is malformed or names an unknown scheme."""


class InvalidScheduleError(ValidationError):
    """A schedule is malformed: cron syntax, time zone, interval, policy or a duplicate name."""


class BackendUnavailableError(QueueKitError, ConnectionError):
    """The server cannot be reached, or the connection dropped during a call."""


class JobNotFoundError(QueueKitError, LookupError):
    """No job has the given id."""


class JobRunningError(QueueKitError):
    """The job is running, so it was left as it is (cancel it first); `job_id` names it."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} is running: cancel it first")
        self.job_id = job_id


class LeaseLostError(QueueKitError):
    """This attempt no longer holds its job (its lease expired and it was rescued, or it was
    cancelled or replayed), so its transaction was rolled back; `job_id` names the job."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"attempt at job {job_id!r} lost its lease: its transaction rolled back")
        self.job_id = job_id


class UnknownTaskError(QueueKitError, LookupError):
    """A job's type has no registered handler."""


class JobFailedError(QueueKitError):
    """A job ended without success (dead or cancelled); `job` holds its final state."""

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


class ProcessTaskError(QueueKitError):
    """A process task (`Tasks.task(process=True)`) failed in a way that cannot come back as its
    own exception: its process died (a crash, a kill), or what it raised or returned could not
    be pickled."""

"""queuekit: an asyncio-native job queue with memory, SQLite, PostgreSQL and Redis backends."""

from .backend import Backend
from .context import JobContext, current_job
from .errors import (
    BackendUnavailableError,
    InvalidConnectionError,
    InvalidNameError,
    InvalidOptionError,
    InvalidPayloadError,
    InvalidScheduleError,
    InvalidURLError,
    JobExistsError,
    JobFailedError,
    JobNotFoundError,
    JobRunningError,
    LeaseLostError,
    PayloadTooLargeError,
    PayloadValidationError,
    QueueKitError,
    UnknownTaskError,
    ValidationError,
)
from .job import Attempt, AttemptOutcome, AttemptRecord, Job, JobPage, JobStatus, NewJob, Priority
from .limits import Limits, LimitUsage, RateLimited
from .options import EnqueueOptions, new_job
from .queue import Queue, connect
from .retention import Retention
from .retry import Discard, Exponential, Fixed, Retry, RetryPolicy
from .scheduler import Missed, Overlap, Schedule, Scheduler, ScheduleState
from .stats import QueueStats
from .tasks import Task, Tasks
from .worker import JobReport, Outcome, Worker

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "AttemptRecord",
    "Backend",
    "BackendUnavailableError",
    "Discard",
    "EnqueueOptions",
    "Exponential",
    "Fixed",
    "InvalidConnectionError",
    "InvalidNameError",
    "InvalidOptionError",
    "InvalidPayloadError",
    "InvalidScheduleError",
    "InvalidURLError",
    "Job",
    "JobContext",
    "JobExistsError",
    "JobFailedError",
    "JobNotFoundError",
    "JobPage",
    "JobReport",
    "JobRunningError",
    "JobStatus",
    "LeaseLostError",
    "LimitUsage",
    "Limits",
    "Missed",
    "NewJob",
    "Outcome",
    "Overlap",
    "PayloadTooLargeError",
    "PayloadValidationError",
    "Priority",
    "Queue",
    "QueueKitError",
    "QueueStats",
    "RateLimited",
    "Retention",
    "Retry",
    "RetryPolicy",
    "Schedule",
    "ScheduleState",
    "Scheduler",
    "Task",
    "Tasks",
    "UnknownTaskError",
    "ValidationError",
    "Worker",
    "connect",
    "current_job",
    "new_job",
]

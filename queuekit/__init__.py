"""queuekit: an asyncio-native job queue with memory, SQLite, PostgreSQL and Redis backends."""

from .backend import Backend
from .batches import BatchCounts, batch
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
    ParentResultsTooLargeError,
    PayloadTooLargeError,
    PayloadValidationError,
    QueueKitError,
    UnknownParentError,
    UnknownTaskError,
    ValidationError,
)
from .job import (
    Attempt,
    AttemptOutcome,
    AttemptRecord,
    Job,
    JobPage,
    JobStatus,
    NewJob,
    OnConflict,
    OnFailure,
    Parent,
    Priority,
)
from .limits import Limits, LimitUsage, RateLimited
from .options import EnqueueOptions, new_job
from .parent_results import ParentOutcome, ParentResults
from .process_pool import ProcessPool
from .queue import Queue, connect
from .retention import Retention
from .retry import Discard, Exponential, Fixed, Retry, RetryPolicy
from .scheduler import Missed, Overlap, Schedule, Scheduler, ScheduleState
from .stats import QueueStats
from .tasks import Task, Tasks
from .worker import JobReport, Outcome, Worker
from .workflows import Workflow, chain, chord, group

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "AttemptRecord",
    "Backend",
    "BackendUnavailableError",
    "BatchCounts",
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
    "OnConflict",
    "OnFailure",
    "Outcome",
    "Overlap",
    "Parent",
    "ParentOutcome",
    "ParentResults",
    "ParentResultsTooLargeError",
    "PayloadTooLargeError",
    "PayloadValidationError",
    "Priority",
    "ProcessPool",
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
    "UnknownParentError",
    "UnknownTaskError",
    "ValidationError",
    "Worker",
    "Workflow",
    "batch",
    "chain",
    "chord",
    "connect",
    "current_job",
    "group",
    "new_job",
]

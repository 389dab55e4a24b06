"""queuekit: an asyncio-native job queue with memory, SQLite, PostgreSQL and Redis backends."""

from .backend import Backend
from .errors import (
    BackendUnavailableError,
    InvalidNameError,
    InvalidOptionError,
    InvalidPayloadError,
    InvalidURLError,
    JobFailedError,
    JobNotFoundError,
    PayloadTooLargeError,
    QueueKitError,
    UnknownTaskError,
    ValidationError,
)
from .job import Attempt, Job, JobPage, JobStatus, NewJob, Priority
from .queue import Queue, connect
from .stats import QueueStats
from .validation import new_job

__all__ = [
    "Attempt",
    "Backend",
    "BackendUnavailableError",
    "InvalidNameError",
    "InvalidOptionError",
    "InvalidPayloadError",
    "InvalidURLError",
    "Job",
    "JobFailedError",
    "JobNotFoundError",
    "JobPage",
    "JobStatus",
    "NewJob",
    "PayloadTooLargeError",
    "Priority",
    "Queue",
    "QueueKitError",
    "QueueStats",
    "UnknownTaskError",
    "ValidationError",
    "connect",
    "new_job",
]

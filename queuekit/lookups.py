"""What a `Queue` method is given to find jobs by, checked: a status's name, a job id."""

from __future__ import annotations

from .errors import InvalidNameError, InvalidOptionError, JobNotFoundError
from .job import Job, JobStatus
from .validation import check_job_id


def status_of(value: JobStatus | str | None) -> JobStatus | None:
    if value is None:
        return None
    try:
        return JobStatus(value)
    except ValueError:
        known = ", ".join(status.value for status in JobStatus)
        raise InvalidOptionError(f"unknown status {value!r}; use one of {known}") from None


def lookup(job_id: object) -> str:
    """`job_id` if a job can have it; no job has any other id (`JobNotFoundError`)."""
    try:
        return check_job_id(job_id)
    except InvalidNameError as exc:
        raise JobNotFoundError(f"no job with id {job_id!r}: {exc}") from None


def found(job: Job | None, job_id: str) -> Job:
    if job is None:
        raise JobNotFoundError(f"no job with id {job_id!r}")
    return job

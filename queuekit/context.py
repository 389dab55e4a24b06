"""The running job's context, reachable from inside a handler with `current_job()`."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .job import Job


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler may want beyond its arguments: the job itself and the worker's state."""

    job: Job
    state: dict[str, Any]
    """Shared by every job of one worker; startup hooks fill it (an HTTP client, a pool...)."""
    worker_id: str


_current: ContextVar[JobContext] = ContextVar("queuekit_current_job")


def current_job() -> JobContext:
    """The context of the job this handler runs; `LookupError` outside a handler."""
    return _current.get()

"""Testing your own tasks without a server: run one through a real worker on a memory queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar, cast

from .backends.memory import MemoryBackend
from .context import JobContext
from .errors import InvalidOptionError, JobFailedError
from .queue import Queue
from .tasks import Task
from .worker import JobReport, Worker

P = ParamSpec("P")
R = TypeVar("R")


@asynccontextmanager
async def memory_queue() -> AsyncIterator[Queue]:
    """A fresh in-memory queue, open for the block."""
    async with Queue(MemoryBackend()) as queue:
        yield queue


async def run(task: Task[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Enqueue one run of `task` on a memory queue, process it with a worker, return its result.

    The job gets one attempt; an exception from the handler is raised here as it was raised
    there, so `pytest.raises` works on it. The result has been through JSON, as in production.
    """
    if task.registry is None:
        raise InvalidOptionError(f"task {task.name!r} is not registered in a Tasks registry")
    errors: list[BaseException] = []

    async def keep_error(context: JobContext, report: JobReport) -> None:
        if report.error is not None:
            errors.append(report.error)

    async with memory_queue() as queue:
        job = await task.with_options(max_attempts=1).enqueue(queue, *args, **kwargs)
        await Worker(
            queue, task.registry, queues=[job.queue], after_job=[keep_error]
        ).run_until_empty()
        try:
            return cast(R, await queue.result(job.id, timeout=0))
        except JobFailedError:
            if errors:
                raise errors[0] from None
            raise


__all__ = ["memory_queue", "run"]

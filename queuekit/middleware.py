"""Middleware: code wrapped around every enqueue of a `Queue` and every handler run of a `Worker`.

An enqueue middleware, `async def (new_jobs, call_next) -> jobs`, gets the validated jobs of one
`enqueue` or `enqueue_many` call; `call_next(new_jobs)` stores the jobs it is given (through the
middleware after it) and returns one stored job per job, in order. A job middleware,
`async def (context, call_next) -> result`, gets the running job's `JobContext`; `call_next()`
runs the rest of the chain, then the handler within the task's `timeout`, and returns the
handler's result or raises its error.

    queue = queuekit.connect(url, middleware=[audit])     # the README shows both in full
    Worker(queue, tasks, middleware=[timed])

The first in a list runs outermost. A middleware may pass on changed jobs (stored as given:
keep them valid) or return another result; what a job middleware raises fails the attempt as
the handler's own error would. With OpenTelemetry installed, tracing's pair (`queuekit.tracing`)
comes first in every `Queue` and `Worker`, unless removed from their `middleware` lists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from importlib.util import find_spec
from typing import Any, TypeAlias

from .context import JobContext
from .job import Job, NewJob

CallEnqueue: TypeAlias = Callable[[list[NewJob]], Awaitable[list[Job]]]
EnqueueMiddleware: TypeAlias = Callable[[list[NewJob], CallEnqueue], Awaitable[list[Job]]]
CallHandler: TypeAlias = Callable[[], Awaitable[Any]]
JobMiddleware: TypeAlias = Callable[[JobContext, CallHandler], Awaitable[Any]]

# Decided once, so that without OpenTelemetry nothing pays for tracing. `opentelemetry` is a
# namespace package that other distributions (opentelemetry-proto...) fill too: look for the API.
TRACING = (
    find_spec("opentelemetry") is not None and find_spec("opentelemetry.propagate") is not None
)


def default_enqueue_middleware() -> list[EnqueueMiddleware]:
    """What every `Queue` runs before the middleware it is given."""
    if not TRACING:
        return []
    from .tracing import inject_trace_context

    return [inject_trace_context]


def default_job_middleware() -> list[JobMiddleware]:
    """What every `Worker` runs before the middleware it is given."""
    if not TRACING:
        return []
    from .tracing import process_span

    return [process_span]


def chain_enqueue(middleware: Sequence[EnqueueMiddleware], store: CallEnqueue) -> CallEnqueue:
    """`store` wrapped in `middleware`, the first outermost."""
    call = store
    for outer in reversed(middleware):
        call = _enqueue_step(outer, call)
    return call


def _enqueue_step(middleware: EnqueueMiddleware, call_next: CallEnqueue) -> CallEnqueue:
    async def step(new_jobs: list[NewJob]) -> list[Job]:
        return await middleware(new_jobs, call_next)

    return step


def chain_job(
    middleware: Sequence[JobMiddleware], context: JobContext, run: CallHandler
) -> CallHandler:
    """`run` wrapped in `middleware` for the job of `context`, the first outermost."""
    call = run
    for outer in reversed(middleware):
        call = partial(outer, context, call)
    return call


__all__ = ["CallEnqueue", "CallHandler", "EnqueueMiddleware", "JobMiddleware"]

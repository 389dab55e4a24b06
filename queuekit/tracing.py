"""OpenTelemetry as middleware, installed in every `Queue` and `Worker` when it is importable:
enqueueing puts the current trace context in the jobs' headers, and each handler runs in a
CONSUMER span that continues it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from .context import JobContext
from .job import Job, NewJob
from .middleware import CallEnqueue, CallHandler
from .validation import check_headers

_tracer = trace.get_tracer("queuekit")
_NO_TRACE_CONTEXT = Context()


async def inject_trace_context(new_jobs: list[NewJob], call_next: CallEnqueue) -> list[Job]:
    """Enqueue middleware: the current trace context added to the jobs' headers, if a span is
    active.

    Headers the caller set win over the propagated ones; the result must still fit the headers'
    size limit.
    """
    if trace.get_current_span().get_span_context().is_valid:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        new_jobs = [
            replace(job, headers=check_headers({**carrier, **job.headers})) for job in new_jobs
        ]
    return await call_next(new_jobs)


async def process_span(context: JobContext, call_next: CallHandler) -> Any:
    """Job middleware: a CONSUMER span around the handler, child of the trace context in its
    job's headers.

    A job without trace context starts a trace of its own, whatever the worker's context is.
    The span encloses the task's timeout, so a job that ran over records its `TimeoutError`.
    """
    job = context.job
    span = _tracer.start_span(
        f"{job.type} process",
        # Most jobs carry no headers: their empty context is the one extract would build.
        context=propagate.extract(job.headers) if job.headers else _NO_TRACE_CONTEXT,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "queuekit",
            "messaging.operation.type": "process",
            "messaging.message.id": job.id,
            "messaging.destination.name": job.queue,
            "queuekit.job.type": job.type,
            "queuekit.job.attempt": job.attempts,
        },
    )
    # What start_as_current_span does, minus two generator layers that were most of the cost
    # of a span per job with no SDK configured (measured: 9 µs down to 5.5 µs).
    with trace.use_span(span, end_on_exit=True):
        return await call_next()

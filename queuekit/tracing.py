"""OpenTelemetry, used by the core only when installed: enqueueing puts the current trace context
in the job's headers, and the worker runs each handler in a CONSUMER span that continues it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import replace

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

from .job import Job, NewJob
from .validation import check_headers

_tracer = trace.get_tracer("queuekit")


def inject(jobs: list[NewJob]) -> list[NewJob]:
    """The jobs with the current trace context added to their headers, if a span is active.

    Headers the caller set win over the propagated ones; the result must still fit the headers'
    size limit.
    """
    if not trace.get_current_span().get_span_context().is_valid:
        return jobs
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [replace(job, headers=check_headers({**carrier, **job.headers})) for job in jobs]


def process_span(job: Job) -> AbstractContextManager[Span]:
    """A CONSUMER span around one attempt at `job`, child of the trace context in its headers.

    A job without trace context starts a trace of its own, whatever the worker's context is.
    """
    span = _tracer.start_span(
        f"{job.type} process",
        context=propagate.extract(job.headers),
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
    return trace.use_span(span, end_on_exit=True)

"""OpenTelemetry tracing (`pip install 'queuekit[tracing]'`): a span per job, continuing the
trace of the code that enqueued it.

    job = await tracing.enqueue_with_context(queue, "send_email", {"to": "a@example.com"})
    Worker(queue, tracing.traced(tasks))                  # a CONSUMER span around each handler

The job model has no metadata field, so the enqueuer's context travels in an envelope, and only
when there is a trace to continue: `enqueue_with_context` stores the payload as
`{"__queuekit_trace__": {"traceparent": ..., "tracestate": ...}, "payload": <your payload>}`
(a PRODUCER span is its parent). Without an active span it enqueues your payload unchanged.
`traced(tasks)` unwraps the envelope before your handler runs, so handlers always see their own
payload; wrap the tasks of every worker that may receive such jobs. The dashboard and the API
show the envelope as stored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, TracerProvider

from .context import current_job
from .job import JSON, Job
from .queue import Queue
from .tasks import Task, Tasks

ENVELOPE_KEY = "__queuekit_trace__"
TRACER_NAME = "queuekit"


def _tracer(provider: TracerProvider | None) -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME, tracer_provider=provider)


def unwrap(payload: JSON) -> tuple[JSON, dict[str, str] | None]:
    """The user's payload and the trace carrier, if `payload` is a trace envelope."""
    if (
        isinstance(payload, dict)
        and set(payload) == {ENVELOPE_KEY, "payload"}
        and isinstance(payload[ENVELOPE_KEY], dict)
    ):
        carrier = {str(k): str(v) for k, v in payload[ENVELOPE_KEY].items()}
        return payload["payload"], carrier
    return payload, None


async def enqueue_with_context(
    queue: Queue,
    type: str,
    payload: JSON = None,
    /,
    *,
    tracer_provider: TracerProvider | None = None,
    **options: Any,
) -> Job:
    """`queue.enqueue(type, payload, **options)`, carrying the current trace into the job."""
    if not trace.get_current_span().get_span_context().is_valid:
        return await queue.enqueue(type, payload, **options)
    tracer = _tracer(tracer_provider)
    with tracer.start_as_current_span(
        f"{type} publish",
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "queuekit", "messaging.operation.type": "publish"},
    ) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        job = await queue.enqueue(type, {ENVELOPE_KEY: carrier, "payload": payload}, **options)
        span.set_attribute("messaging.message.id", job.id)
        span.set_attribute("messaging.destination.name", job.queue)
        return job


def traced(tasks: Tasks, *, tracer_provider: TracerProvider | None = None) -> Tasks:
    """A copy of `tasks` whose handlers run in a span each, parented by the enqueuer's trace."""
    tracer = _tracer(tracer_provider)
    wrapped = Tasks()
    for task in tasks:
        wrapped._add(replace(task, function=_wrap(task, tracer), registry=wrapped))
    return wrapped


def _wrap(task: Task[Any, Any], tracer: trace.Tracer) -> Any:
    async def run_in_span(*args: Any, **kwargs: Any) -> Any:
        # Task.run spread the payload: a dict as keywords, another value as one argument.
        payload: JSON = args[0] if args else (kwargs or None)
        payload, carrier = unwrap(payload)
        parent = propagate.extract(carrier) if carrier else otel_context.Context()
        attributes: dict[str, Any] = {
            "messaging.system": "queuekit",
            "messaging.operation.type": "process",
        }
        try:
            job = current_job().job
        except LookupError:  # called outside a worker
            pass
        else:
            attributes.update(
                {
                    "messaging.message.id": job.id,
                    "messaging.destination.name": job.queue,
                    "queuekit.job.type": job.type,
                    "queuekit.job.attempt": job.attempts,
                }
            )
        with tracer.start_as_current_span(
            f"{task.name} process", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        ):
            return await task.run(payload)

    run_in_span.__name__ = getattr(task.function, "__name__", task.name)
    return run_in_span


__all__ = ["ENVELOPE_KEY", "enqueue_with_context", "traced", "unwrap"]

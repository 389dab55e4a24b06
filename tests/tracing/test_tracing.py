"""A span per job, continuing the enqueuer's trace; checked with the SDK's in-memory exporter."""

from __future__ import annotations

import pytest

from queuekit import Queue, Tasks, Worker

from ..worker.options import FAST

pytest.importorskip("opentelemetry.sdk")
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from queuekit.tracing import ENVELOPE_KEY, enqueue_with_context, traced


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


async def test_a_request_trace_continues_into_its_job(
    queue: Queue, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tasks = Tasks()
    seen: list[tuple[str, int]] = []

    @tasks.task(max_attempts=1)
    async def send(to: str) -> None:
        seen.append((to, trace.get_current_span().get_span_context().trace_id))
        if to == "bad":
            raise RuntimeError("bounced")

    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("POST /signup") as request:
        job = await enqueue_with_context(
            queue, "send", {"to": "a@example.com"}, queue="mail", tracer_provider=provider
        )
        bad = await enqueue_with_context(
            queue, "send", {"to": "bad"}, max_attempts=1, tracer_provider=provider
        )
    stored = await queue.get_job(job.id)
    assert stored.payload["payload"] == {"to": "a@example.com"}
    assert "traceparent" in stored.payload[ENVELOPE_KEY]
    plain = await enqueue_with_context(queue, "send", {"to": "b"}, tracer_provider=provider)
    assert (await queue.get_job(plain.id)).payload == {"to": "b"}  # no trace: no envelope

    await Worker(
        queue, traced(tasks, tracer_provider=provider), queues=["mail", "default"], **FAST
    ).run_until_empty()

    trace_id = request.get_span_context().trace_id
    by_recipient = dict(seen)
    assert len(seen) == 3 and by_recipient["a@example.com"] == by_recipient["bad"] == trace_id
    assert by_recipient["b"] != trace_id
    spans = {
        (span.name, span.attributes.get("messaging.message.id")): span
        for span in exporter.get_finished_spans()
        if span.attributes
    }
    publish = spans[("send publish", job.id)]
    process = spans[("send process", job.id)]
    assert publish.kind == SpanKind.PRODUCER and process.kind == SpanKind.CONSUMER
    assert process.context.trace_id == trace_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    assert (
        process.attributes is not None
        and process.attributes["messaging.destination.name"] == "mail"
    )
    failed = spans[("send process", bad.id)]
    assert failed.status.status_code == StatusCode.ERROR
    orphan = spans[("send process", plain.id)]
    assert orphan.parent is None and orphan.context.trace_id != trace_id

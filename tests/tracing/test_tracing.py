"""A span per job continues the enqueuer's trace through the job's headers, on every backend."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import queuekit
from queuekit import Job, Queue, Tasks, Worker

from ..worker.options import FAST

pytest.importorskip("opentelemetry.sdk")
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from queuekit import tracing
from queuekit.middleware import CallHandler


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> TracerProvider:
    """A provider of our own for queuekit's spans: the global one can be set only once."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("queuekit"))
    return provider


def _traceparent(span: trace.Span) -> str:
    context = span.get_span_context()
    ids = f"{format_trace_id(context.trace_id)}-{format_span_id(context.span_id)}"
    return f"00-{ids}-{context.trace_flags:02x}"


def _process_spans(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    """The worker's spans by job id."""
    return {
        str(span.attributes["messaging.message.id"]): span
        for span in exporter.get_finished_spans()
        if span.kind == SpanKind.CONSUMER and span.attributes
    }


def _tasks(seen: list[tuple[str, int]]) -> Tasks:
    tasks = Tasks()

    @tasks.task(max_attempts=1)
    async def send(to: str) -> None:
        seen.append((to, trace.get_current_span().get_span_context().trace_id))
        if to == "bad":
            raise RuntimeError("bounced")

    return tasks


async def test_a_request_trace_continues_into_its_jobs(
    queue: Queue, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    seen: list[tuple[str, int]] = []
    tasks = _tasks(seen)
    send = tasks.get("send")
    assert send is not None
    with provider.get_tracer("app").start_as_current_span("POST /signup") as request:
        jobs: list[Job] = [
            await queue.enqueue("send", {"to": "a"}, queue="mail"),
            await send.enqueue(queue, to="b"),
            *await queue.enqueue_many(
                [
                    queuekit.new_job("send", {"to": "c"}),
                    queuekit.new_job("send", {"to": "bad"}, max_attempts=1),
                ]
            ),
        ]
    for job in jobs:
        assert job.headers == {"traceparent": _traceparent(request)}
        assert (await queue.get_job(job.id)).headers == job.headers

    await Worker(queue, tasks, queues=["mail", "default"], **FAST).run_until_empty()

    # Handlers got exactly their payload, inside the request's trace.
    trace_id = request.get_span_context().trace_id
    assert sorted(seen) == [(to, trace_id) for to in ("a", "b", "bad", "c")]
    spans = _process_spans(exporter)
    for job in jobs:
        process = spans[job.id]
        assert process.name == "send process"
        assert process.context is not None and process.context.trace_id == trace_id
        assert process.parent is not None
        assert process.parent.span_id == request.get_span_context().span_id
    assert spans[jobs[0].id].attributes == {
        "messaging.system": "queuekit",
        "messaging.operation.type": "process",
        "messaging.message.id": jobs[0].id,
        "messaging.destination.name": "mail",
        "queuekit.job.type": "send",
        "queuekit.job.attempt": 1,
    }
    assert spans[jobs[3].id].status.status_code == StatusCode.ERROR


async def test_without_an_active_span_no_headers_are_stored(
    queue: Queue, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    seen: list[tuple[str, int]] = []
    job = await queue.enqueue("send", {"to": "a"})
    (bulk,) = await queue.enqueue_many([queuekit.new_job("send", {"to": "b"})])
    assert job.headers == bulk.headers == {}
    assert (await queue.get_job(job.id)).headers == {}

    await Worker(queue, _tasks(seen), **FAST).run_until_empty()

    spans = _process_spans(exporter)
    assert spans[job.id].parent is None and spans[bulk.id].parent is None
    assert len(seen) == 2 and seen[0][1] != seen[1][1]  # a trace of its own each


async def test_headers_the_caller_passes_are_kept(
    queue: Queue, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("earlier") as earlier:
        chosen = _traceparent(earlier)
    with tracer.start_as_current_span("POST /signup") as request:
        explicit = await queue.enqueue(
            "send", {"to": "a"}, headers={"traceparent": chosen, "tenant": "acme"}
        )
        (added,) = await queue.enqueue_many(
            [queuekit.new_job("send", {"to": "b"}, headers={"tenant": "acme"})]
        )
    assert explicit.headers == {"traceparent": chosen, "tenant": "acme"}
    assert added.headers == {"tenant": "acme", "traceparent": _traceparent(request)}

    await Worker(queue, _tasks([]), **FAST).run_until_empty()

    spans = _process_spans(exporter)
    explicit_parent, added_parent = spans[explicit.id].parent, spans[added.id].parent
    assert explicit_parent is not None and added_parent is not None
    assert explicit_parent.span_id == earlier.get_span_context().span_id
    assert added_parent.span_id == request.get_span_context().span_id


async def test_tracing_is_middleware_every_queue_and_worker_puts_first(
    queue: Queue, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async def mine(context: queuekit.JobContext, call_next: CallHandler) -> Any:
        return await call_next()

    worker = Worker(queue, _tasks([]), middleware=[mine], **FAST)
    assert queuekit.connect("memory://").middleware == [tracing.inject_trace_context]
    assert queue.middleware == [tracing.inject_trace_context]
    assert worker.middleware == [tracing.process_span, mine]

    # Removed, nothing is traced.
    queue.middleware.remove(tracing.inject_trace_context)
    worker.middleware.remove(tracing.process_span)
    with provider.get_tracer("app").start_as_current_span("POST /signup"):
        job = await queue.enqueue("send", {"to": "a"})
    assert job.headers == {}
    await worker.run_until_empty()
    assert (await queue.get_job(job.id)).status == queuekit.JobStatus.COMPLETED
    assert _process_spans(exporter) == {}


async def test_a_job_over_its_timeout_records_it_on_its_span(
    queue: Queue, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tasks = Tasks()

    @tasks.task(max_attempts=1, timeout=0.05)
    async def hang() -> None:
        await anyio.sleep_forever()

    job = await hang.enqueue(queue)
    await Worker(queue, tasks, **FAST).run_until_empty()
    span = _process_spans(exporter)[job.id]
    assert span.status.status_code == StatusCode.ERROR
    assert [event.attributes["exception.type"] for event in span.events if event.attributes] == [
        "TimeoutError"
    ]

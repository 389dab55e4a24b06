"""Conformance: job events reach every subscriber of a store, in each publisher's order,
filtered as asked; a slow subscriber is told how many it lost; closing unsubscribes. On
PostgreSQL and Redis they cross processes."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from queuekit import Backend, Queue
from queuekit.events import Event, EventKind, EventStream, decode_chunk, encode_chunks

from ..setups import SETUPS, BackendSetup
from ..waiting import DEADLINE

ROOT = str(Path(__file__).resolve().parents[2])
AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _event(n: int, kind: EventKind = EventKind.ENQUEUED, queue: str = "q") -> Event:
    return Event(kind, queue, f"job-{n}", "t", AT, n % 3)


async def _take(stream: EventStream, count: int) -> list[Event]:
    """The next `count` events of `stream`."""
    with anyio.fail_after(DEADLINE):
        return [await anext(stream) for _ in range(count)]


def test_the_json_form_round_trips_and_leaves_out_unset_fields() -> None:
    full = Event(EventKind.PROGRESS, "q", "id", "t", AT, 2, 0.5, "half", None, None)
    assert full.to_dict() == {
        "kind": "progress",
        "queue": "q",
        "job_id": "id",
        "type": "t",
        "at": AT.isoformat(),
        "attempt": 2,
        "progress": 0.5,
        "note": "half",
    }
    assert Event.from_dict(full.to_dict()) == full
    many = Event(EventKind.CANCELLED, count=3, error="expired")
    assert many.to_dict() == {"kind": "cancelled", "count": 3, "error": "expired"}


def test_chunks_stay_under_their_limit_and_keep_the_order() -> None:
    events = [Event(EventKind.PROGRESS, "q", f"job-{n}", note="x" * 200) for n in range(100)]
    chunks = encode_chunks(events, 2000, serial=7)
    assert len(chunks) > 10
    assert all(len(chunk.encode()) <= 2000 + 48 for chunk in chunks)
    assert len(set(chunks)) == len(chunks)
    assert [event for chunk in chunks for event in decode_chunk(chunk)] == events


async def test_a_subscriber_receives_what_is_published_in_order(queue: Queue) -> None:
    async with queue.events() as stream:
        sent = [_event(n) for n in range(50)]
        await queue.backend.publish_events(sent[:20])
        await queue.backend.publish_events(sent[20:])
        assert await _take(stream, 50) == sent


async def test_a_long_batch_arrives_whole_and_in_order(queue: Queue) -> None:
    """Over PostgreSQL's 8000-byte NOTIFY limit: sent in several chunks."""
    async with queue.events() as stream:
        sent = [Event(EventKind.PROGRESS, "q", f"job-{n}", note="n" * 200) for n in range(300)]
        for event in sent:
            queue.event_outbox.add(event)
        await queue.event_outbox.flush()
        assert await _take(stream, 300) == sent


async def test_filters_pick_by_queue_type_job_and_kind(queue: Queue) -> None:
    sent = [
        Event(EventKind.STARTED, "a", "1", "t"),
        Event(EventKind.COMPLETED, "a", "1", "t"),
        Event(EventKind.COMPLETED, "b", "2", "t"),
        Event(EventKind.COMPLETED, "a", "3", "u"),
        Event(EventKind.FAILED, "a", "4", "t"),
        Event(EventKind.CANCELLED, None, None, None, count=5),  # a bulk cancel of every queue
    ]
    end = Event(EventKind.DEAD, "a", "1", "t")
    async with (
        queue.events(queue="a", kinds=["completed", "dead", "cancelled"]) as by_queue,
        queue.events(type="t", kinds=["completed", "dead"]) as by_type,
        queue.events(job_id="1") as by_job,
    ):
        await queue.backend.publish_events([*sent, end])
        assert await _take(by_queue, 4) == [sent[1], sent[3], sent[5], end]
        assert await _take(by_type, 3) == [sent[1], sent[2], end]
        assert await _take(by_job, 4) == [sent[0], sent[1], sent[5], end]


async def test_two_subscribers_each_receive_every_event(queue: Queue) -> None:
    async with queue.events() as first, queue.events() as second:
        sent = [_event(n) for n in range(10)]
        await queue.backend.publish_events(sent)
        assert await _take(first, 10) == sent
        assert await _take(second, 10) == sent


async def test_a_slow_subscriber_loses_the_oldest_and_is_told_how_many(queue: Queue) -> None:
    async with queue.events(buffer=5) as slow, queue.events() as sentinel:
        sent = [_event(n) for n in range(12)]
        await queue.backend.publish_events(sent)
        await _take(sentinel, 12)  # all have arrived: `slow` holds what it kept
        dropped, *kept = await _take(slow, 6)
        assert dropped == Event(EventKind.DROPPED, count=7)
        assert kept == sent[7:]
        await queue.backend.publish_events([sent[0]])
        assert await _take(slow, 1) == [sent[0]]


async def test_closing_unsubscribes(queue: Queue) -> None:
    stream = queue.events()
    async with stream:
        assert stream.sink in queue.backend.event_hub().sinks
    assert not queue.backend.event_hub().sinks
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    async with queue.events() as again:  # and a new subscription works
        await queue.backend.publish_events([_event(1)])
        assert await _take(again, 1) == [_event(1)]


async def test_iterating_subscribes_without_a_with_block(queue: Queue) -> None:
    stream = queue.events(kinds=["enqueued"])
    await stream.open()
    job = await queue.enqueue("t", queue="q")
    async for event in stream:
        assert (event.kind, event.job_id, event.queue, event.type) == ("enqueued", job.id, "q", "t")
        assert event.at == job.created_at
        break
    await stream.aclose()
    assert not queue.backend.event_hub().sinks


async def test_queue_publishes_enqueues_and_cancels(queue: Queue) -> None:
    async with queue.events() as stream:
        job = await queue.enqueue("t", queue="q")
        again = await queue.enqueue("t", queue="q", unique_key="k")
        await queue.enqueue("t", queue="q", unique_key="k")  # the same job: no event
        cancelled = await queue.cancel(job.id)
        assert await queue.cancel_all(queue="q") == 1
        events = await _take(stream, 4)
    assert [(e.kind, e.job_id) for e in events] == [
        ("enqueued", job.id),
        ("enqueued", again.id),
        ("cancelled", job.id),
        ("cancelled", None),
    ]
    assert events[2].at == cancelled.finished_at
    assert (events[3].queue, events[3].count) == ("q", 1)


async def test_a_subscriber_hears_another_client_of_the_store(
    backend_setup: BackendSetup,
) -> None:
    listening, publishing = backend_setup.make(), backend_setup.make()
    await listening.open()
    await publishing.open()
    try:
        async with Queue(listening).events() as stream:
            sent = [_event(n) for n in range(5)]
            await publishing.publish_events(sent)
            assert await _take(stream, 5) == sent
    finally:
        await publishing.close()
        await listening.close()


async def test_a_publisher_that_found_nobody_listening_is_heard_by_a_new_subscriber(
    backend_setup: BackendSetup,
) -> None:
    """A publish that nobody heard makes its process publish nothing for a while; a
    subscriber that comes meanwhile still gets every event published once it is subscribed."""
    listening, publishing = backend_setup.make(), backend_setup.make()
    publisher = Queue(publishing)
    await listening.open()
    await publishing.open()
    try:
        await publisher.enqueue("t", queue="q")
        await publisher.event_outbox.flush()  # heard by nobody
        async with Queue(listening).events(kinds=["enqueued"]) as stream:
            job = await publisher.enqueue("t", queue="q")
            await publisher.event_outbox.flush()
            assert [event.job_id for event in await _take(stream, 1)] == [job.id]
    finally:
        await publishing.close()
        await listening.close()


async def test_with_nobody_listening_most_events_are_not_published(queue: Queue) -> None:
    """Once a publish finds that nobody listens, the next `UNHEARD_SECONDS` publish nothing:
    at most the events of one publish (`PUBLISH_EVERY`) in each such period are sent."""
    for _ in range(200):
        await queue.enqueue("t", queue="q")
    await queue.event_outbox.flush()
    assert queue.event_outbox.events_published < 100


@pytest.fixture(params=["postgres", "redis"])
async def shared_setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendSetup]:
    """A store other processes share events on (SQLite's stay in their process)."""
    async with SETUPS[request.param](tmp_path) as setup:
        yield setup


async def test_events_cross_processes(shared_setup: BackendSetup) -> None:
    url = shared_setup.url
    assert url is not None
    backend: Backend = shared_setup.make()
    async with Queue(backend) as queue, queue.events(type="from-afar") as stream:
        script = "import asyncio, queuekit, sys\n" + (
            "async def main():\n"
            "    async with queuekit.connect(sys.argv[1]) as queue:\n"
            "        await queue.enqueue('from-afar', queue='far')\n"
            "asyncio.run(main())\n"
        )
        env = {**os.environ, "PYTHONPATH": ROOT}
        done = await anyio.run_process([sys.executable, "-c", script, url], env=env, check=False)
        assert done.returncode == 0, done.stderr.decode()
        (event,) = await _take(stream, 1)
        assert (event.kind, event.queue, event.type) == ("enqueued", "far", "from-afar")
        job = await queue.get_job(event.job_id or "")
        assert event.at == job.created_at

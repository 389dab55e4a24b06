"""Conformance: every change of a job is announced, whichever path makes it: the rescuer's
(failed, dead), snoozes and hand-backs, replays, run-now, deletes, and expiry by a claim or
by the sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio

from queuekit import Backend, Queue, RateLimited, Retry, Tasks, Worker, new_job
from queuekit.backend import EXPIRED, LEASE_EXPIRED
from queuekit.events import Event, EventKind, EventStream

from ..waiting import DEADLINE
from ..worker.options import FAST
from .helpers import claim, claim_one


async def _next(stream: EventStream, kind: EventKind) -> Event:
    """The next event of `kind` on `stream` (others are skipped)."""
    with anyio.fail_after(DEADLINE):
        async for event in stream:
            if event.kind == kind:
                return event
    raise AssertionError("the stream ended")


async def test_the_rescuer_announces_jobs_failed_and_dead(queue: Queue, backend: Backend) -> None:
    await queue.enqueue("t", queue="lost", max_attempts=2)
    async with (
        queue.events(kinds=["failed", "dead"]) as stream,
        Worker(queue, Tasks(), queues=["elsewhere"], **FAST),  # it rescues every queue
    ):
        await claim_one(backend, queue="lost", lease=0.05)  # a worker that then died
        failed = await _next(stream, EventKind.FAILED)
        await claim_one(backend, queue="lost", lease=0.05)
        dead = await _next(stream, EventKind.DEAD)
    assert failed == Event(EventKind.FAILED, count=1, error=LEASE_EXPIRED)
    assert dead == Event(EventKind.DEAD, count=1, error=LEASE_EXPIRED)


async def test_snoozes_and_hand_backs_are_announced(queue: Queue) -> None:
    tasks = Tasks()
    started = anyio.Event()

    @tasks.task()
    async def snoozing() -> None:
        raise Retry(after=3600)

    @tasks.task()
    async def limited() -> None:
        raise RateLimited(after=3600)

    @tasks.task()
    async def endless() -> None:
        started.set()
        await anyio.sleep_forever()

    async with queue.events(kinds=["snoozed"]) as stream:
        async with Worker(queue, tasks, queues=["a"], **FAST):
            first = await snoozing.with_options(queue="a").enqueue(queue)
            snoozed = await _next(stream, EventKind.SNOOZED)
            second = await limited.with_options(queue="a").enqueue(queue)
            held = await _next(stream, EventKind.SNOOZED)
        async with Worker(queue, tasks, queues=["b"], shutdown_timeout=0, **FAST):
            third = await endless.with_options(queue="b").enqueue(queue)
            with anyio.fail_after(DEADLINE):
                await started.wait()
        handed_back = await _next(stream, EventKind.SNOOZED)
    seen = [(e.job_id, e.queue, e.type, e.attempt, e.note) for e in (snoozed, held, handed_back)]
    expected = [(first, None), (second, "rate limited"), (third, "shutdown")]
    assert seen == [(job.id, job.queue, job.type, 1, note) for job, note in expected]
    assert (await queue.get_job(third.id)).status == "pending"


async def test_replay_run_now_and_delete_are_announced(queue: Queue, backend: Backend) -> None:
    async with queue.events(kinds=["enqueued", "deleted"]) as stream:
        dead = await queue.enqueue("t", queue="r", max_attempts=1)
        await backend.fail((await claim_one(backend, queue="r")).attempt, "x", retry_in=None)
        replayed = await queue.replay(dead.id)
        later = await queue.enqueue("t", queue="r", delay=3600)
        due = await queue.run_now(later.id)
        assert await queue.delete_job(later.id)
        with anyio.fail_after(DEADLINE):
            events = [await anext(stream) for _ in range(5)]
    assert [(e.kind, e.job_id, e.queue, e.type, e.note, e.at) for e in events] == [
        ("enqueued", dead.id, "r", "t", None, dead.created_at),
        ("enqueued", dead.id, "r", "t", "replay", replayed.scheduled_at),
        ("enqueued", later.id, "r", "t", None, later.created_at),
        ("enqueued", later.id, "r", "t", "run now", due.scheduled_at),
        ("deleted", later.id, None, None, None, None),
    ]
    assert replayed.attempts == events[1].attempt == 0


async def test_a_deleted_job_passes_a_queue_filter(queue: Queue) -> None:
    """Its queue is not known where it is announced: it may be the one watched."""
    job = await queue.enqueue("t", queue="watched")
    async with queue.events(queue="watched", kinds=["deleted"]) as stream:
        assert await queue.delete_job(job.id)
        assert (await _next(stream, EventKind.DELETED)).job_id == job.id


async def test_bulk_repairs_announce_how_many(queue: Queue, backend: Backend) -> None:
    async with queue.events(kinds=["enqueued", "deleted"]) as stream:
        for _ in range(2):
            job = await queue.enqueue("t", queue="b", max_attempts=1)
            await backend.fail((await claim_one(backend, queue="b")).attempt, "x", retry_in=None)
        await queue.enqueue("t", queue="b", delay=3600)
        assert await queue.replay_all(queue="b") == 2
        assert await queue.run_now_all(queue="b", type="t") == 1
        assert await queue.delete_all(queue="b", status="pending") == 3
        with anyio.fail_after(DEADLINE):
            events = [await anext(stream) for _ in range(6)]
    assert [(e.job_id is not None, e.note) for e in events[:3]] == [(True, None)] * 3
    assert events[1].job_id == job.id
    assert events[3:] == [
        Event(EventKind.ENQUEUED, "b", note="replay", count=2),
        Event(EventKind.ENQUEUED, "b", type="t", note="run now", count=1),
        Event(EventKind.DELETED, "b", count=3),
    ]


async def test_expiry_is_announced_whichever_path_expires_a_job(
    queue: Queue, backend: Backend
) -> None:
    """Memory and Redis claims cancel the expired jobs they meet; PostgreSQL's and SQLite's
    skip them for the sweep. Either way the sweep announces each once."""
    past = datetime.now(UTC) - timedelta(hours=1)
    met = await queue.enqueue("t", queue="x", expires_at=past)
    await queue.enqueue("t", queue="x", expires_at=past, delay=3600)  # no claim meets it
    assert await claim(backend, queue="x") == []
    async with (
        queue.events(kinds=["cancelled"]) as stream,
        Worker(queue, Tasks(), queues=["x"], **FAST),
    ):
        swept = await _next(stream, EventKind.CANCELLED)
    assert swept == Event(EventKind.CANCELLED, count=2, error=EXPIRED)
    assert (await queue.get_job(met.id)).last_error == EXPIRED


async def _of_jobs(stream: EventStream, ids: set[str], count: int) -> list[Event]:
    """The next `count` events about the jobs `ids`, but their enqueues (the outbox of the
    `Queue` that stored them may publish those after the stream subscribed)."""
    seen: list[Event] = []
    with anyio.fail_after(DEADLINE):
        async for event in stream:
            if event.job_id in ids and (event.kind, event.note) != (EventKind.ENQUEUED, None):
                seen.append(event)
                if len(seen) == count:
                    return seen
    raise AssertionError("the stream ended")


async def test_what_a_parent_decides_is_announced(queue: Queue, backend: Backend) -> None:
    """No `Queue` releases, cancels or brings back a dependent: the write that ends or replays
    its parent does, and the backend announces it, at its own clock's time."""
    parent = await queue.enqueue("p", queue="w", max_attempts=1)
    child = await queue.enqueue("c", queue="w", after=[parent])
    grandchild = await queue.enqueue("g", queue="w", after=[child])
    other = await queue.enqueue("p", queue="w")
    released = await queue.enqueue("r", queue="w", after=[other])
    async with queue.events(queue="w", kinds=["enqueued", "cancelled", "waiting"]) as stream:
        running = await claim_one(backend, queue="w")
        assert running.id == parent.id
        await backend.fail(running.attempt, "boom", retry_in=None)
        assert await backend.complete((await claim_one(backend, queue="w")).attempt)
        await queue.replay(parent.id)
        events = await _of_jobs(stream, {child.id, grandchild.id, released.id}, 5)
    by_job: dict[str, list[Event]] = {}
    for event in events:
        by_job.setdefault(event.job_id or "", []).append(event)
    seen = {
        job_id: [(e.kind, e.queue, e.type, e.note, e.error) for e in job_events]
        for job_id, job_events in by_job.items()
    }
    assert seen == {
        child.id: [
            ("cancelled", "w", "c", None, f"parent {parent.id} dead"),
            ("waiting", "w", "c", None, None),
        ],
        grandchild.id: [
            ("cancelled", "w", "g", None, f"parent {child.id} cancelled"),
            ("waiting", "w", "g", None, None),
        ],
        released.id: [("enqueued", "w", "r", "released", None)],
    }
    assert all(event.at is not None and event.attempt == 0 for event in events)
    assert by_job[released.id][0].at == (await queue.get_job(released.id)).scheduled_at


async def test_a_large_cascade_is_announced_whole(queue: Queue, backend: Backend) -> None:
    """More dependents than one notification carries (PostgreSQL's are under 8000 bytes)."""
    parent = await queue.enqueue("p", queue="fan", max_attempts=1)
    children = await queue.enqueue_many(
        [new_job("c", queue="fan", after=[parent]) for _ in range(300)]
    )
    async with queue.events(queue="fan", kinds=["cancelled"]) as stream:
        await backend.fail((await claim_one(backend, queue="fan")).attempt, "x", retry_in=None)
        events = await _of_jobs(stream, {job.id for job in children}, len(children))
    assert {event.job_id for event in events} == {job.id for job in children}


async def test_what_an_expiry_decides_is_announced(queue: Queue, backend: Backend) -> None:
    """A claim that expires a parent (memory, Redis) leaves the announcing to the sweep, as it
    leaves the count of expired jobs."""
    past = datetime.now(UTC) - timedelta(hours=1)
    parent = await queue.enqueue("p", queue="e", expires_at=past)
    child = await queue.enqueue("c", queue="e", after=[parent])
    async with queue.events(queue="e", kinds=["cancelled"]) as stream:
        assert await claim(backend, queue="e") == []
        async with Worker(queue, Tasks(), queues=["elsewhere"], **FAST):
            (cancelled,) = await _of_jobs(stream, {child.id}, 1)
    assert cancelled.error == f"parent {parent.id} cancelled"
    assert cancelled.at == (await queue.get_job(child.id)).finished_at

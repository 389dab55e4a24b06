"""The worker on every backend announces each job's life as it happens: started, progress,
completed; failed then dead; cancelled, by hand or by expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio

from queuekit import Queue, Tasks, Worker, current_job
from queuekit.backend import EXPIRED
from queuekit.events import Event, EventKind, EventStream

from ..waiting import DEADLINE
from .options import FAST


async def _until(stream: EventStream, kind: EventKind, job_id: str | None) -> list[Event]:
    """The events of `stream` up to the first of `kind` for `job_id`, that one included."""
    seen: list[Event] = []
    with anyio.fail_after(DEADLINE):
        async for event in stream:
            seen.append(event)
            if event.kind == kind and event.job_id == job_id:
                return seen
    raise AssertionError("the stream ended")


async def test_a_job_is_enqueued_started_in_progress_and_completed(queue: Queue) -> None:
    tasks = Tasks()
    seen_progress = anyio.Event()

    @tasks.task()
    async def work(n: int) -> int:
        current_job().set_progress(0.5, "half way")
        await seen_progress.wait()  # the heartbeat wrote it, and it was announced
        return n

    async with queue.events(type="work") as stream:
        job = await work.enqueue(queue, 7)
        async with Worker(queue, tasks, lease=0.6, **FAST):
            before = await _until(stream, EventKind.PROGRESS, job.id)
            seen_progress.set()
            after = await _until(stream, EventKind.COMPLETED, job.id)
        finished = await queue.get_job(job.id)
    assert [e.kind for e in before] == ["enqueued", "started", "progress"]
    enqueued, started, progress = before
    assert enqueued.at == job.created_at and enqueued.attempt == 0
    assert started.at == finished.started_at and started.attempt == 1
    assert (progress.progress, progress.note, progress.attempt) == (0.5, "half way", 1)
    assert [e.kind for e in after] == ["completed"]
    assert {(e.queue, e.job_id, e.type) for e in before + after} == {("default", job.id, "work")}


async def test_a_failing_job_fails_then_dies_with_its_error(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task(max_attempts=2)
    async def broken() -> None:
        raise ValueError("no luck\nsecond line")

    async with queue.events(job_id=None, kinds=["started", "failed", "dead"]) as stream:
        job = await broken.with_options(max_attempts=2).enqueue(queue)
        async with Worker(queue, tasks, **FAST) as worker:
            seen = await _until(stream, EventKind.DEAD, job.id)
            worker.stop()
    assert [(e.kind, e.attempt) for e in seen] == [
        ("started", 1),
        ("failed", 1),
        ("started", 2),
        ("dead", 2),
    ]
    assert seen[1].error == seen[3].error == "ValueError: no luck"


async def test_a_cancel_of_a_running_job_is_announced(queue: Queue) -> None:
    tasks = Tasks()
    running = anyio.Event()

    @tasks.task()
    async def endless() -> None:
        running.set()
        await anyio.sleep_forever()

    async with queue.events(kinds=["cancelled", "started"]) as stream, Worker(queue, tasks, **FAST):
        job = await endless.enqueue(queue)
        with anyio.fail_after(DEADLINE):
            await running.wait()
        await queue.cancel(job.id)
        seen = await _until(stream, EventKind.CANCELLED, job.id)
    assert [(e.kind, e.job_id) for e in seen] == [("started", job.id), ("cancelled", job.id)]


async def test_the_sweep_announces_how_many_jobs_expired(queue: Queue) -> None:
    """Whether a claim (memory, Redis) or the sweep itself expired the job."""
    tasks = Tasks()

    @tasks.task()
    async def never() -> None:
        raise AssertionError("an expired job ran")

    past = datetime.now(UTC) - timedelta(hours=1)
    async with queue.events(kinds=["cancelled"]) as stream:
        job = await never.with_options(expires_at=past, delay=3600).enqueue(queue)
        async with Worker(queue, tasks, **FAST):
            seen = await _until(stream, EventKind.CANCELLED, None)
    assert seen == [Event(EventKind.CANCELLED, count=1, error=EXPIRED)]
    assert (await queue.get_job(job.id)).last_error == EXPIRED

"""A worker given a `Retention` prunes each finished state by its own age, and nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest

from queuekit import Discard, InvalidOptionError, JobNotFoundError, JobStatus, Queue, Tasks, Worker
from queuekit.retention import Retention

from ..waiting import eventually
from .options import FAST

tasks = Tasks()


@tasks.task()
async def fine() -> None:
    pass


@tasks.task()
async def hopeless() -> None:
    raise Discard("nothing to retry")


async def status_of(queue: Queue, job_id: str) -> JobStatus | None:
    try:
        return (await queue.get_job(job_id)).status
    except JobNotFoundError:
        return None


async def test_each_finished_state_is_kept_for_its_retention(queue: Queue) -> None:
    completed = await queue.enqueue("fine")
    dead = await queue.enqueue("hopeless")
    cancelled = await queue.enqueue("fine", delay=3600)
    await queue.cancel(cancelled.id)
    waiting = await queue.enqueue("fine", delay=3600)
    await Worker(queue, tasks, **FAST).run_until_empty()

    async def statuses() -> list[JobStatus | None]:
        jobs = (completed, dead, cancelled, waiting)
        return [await status_of(queue, job.id) for job in jobs]

    assert await statuses() == [
        JobStatus.COMPLETED,
        JobStatus.DEAD,
        JobStatus.CANCELLED,
        JobStatus.PENDING,
    ]

    # Completed jobs are kept a day, dead ones not at all, cancelled ones for ever. A pass
    # prunes the states in turn (completed first), so once the dead job is gone the
    # completed one has been looked at too.
    keep_a_day = Retention(completed=timedelta(days=1), dead=0, interval=0.01)
    async with Worker(queue, tasks, retention=keep_a_day, **FAST):

        async def dead_pruned() -> bool:
            return await status_of(queue, dead.id) is None

        await eventually(dead_pruned, "the dead job pruned")
    assert await statuses() == [JobStatus.COMPLETED, None, JobStatus.CANCELLED, JobStatus.PENDING]

    keep_nothing = Retention(completed=0, cancelled=timedelta(0), interval=0.01)
    async with Worker(queue, tasks, retention=keep_nothing, **FAST):

        async def all_pruned() -> bool:
            return (await statuses())[:3] == [None, None, None]

        await eventually(all_pruned, "every finished job pruned")
    assert await status_of(queue, waiting.id) == JobStatus.PENDING


async def test_prune_once_applies_a_retention(queue: Queue) -> None:
    old = await queue.enqueue("fine")
    await Worker(queue, tasks, **FAST).run_until_empty()
    assert await Retention(completed=3600).apply(queue) == 0
    assert await Retention(dead=0, cancelled=0).apply(queue) == 0
    assert await Retention(completed=0).apply(queue) == 1
    assert await status_of(queue, old.id) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"completed": -1}, "the retention of completed jobs must be finite and >= 0"),
        ({"dead": float("nan")}, "the retention of dead jobs must be finite"),
        ({"cancelled": "7d"}, "the retention of cancelled jobs must be seconds or a timedelta"),
        ({"interval": 0}, "the retention interval must be finite and > 0"),
        ({"activity": 59}, "the retention of activity must be a minute or more"),
        ({"activity": -1}, "the retention of activity must be finite and >= 0"),
    ],
)
def test_a_bad_retention_is_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        Retention(**options)  # type: ignore[arg-type]


def test_a_worker_takes_only_a_retention(queue: Queue) -> None:
    with pytest.raises(InvalidOptionError, match=r"retention must be a queuekit\.Retention"):
        Worker(queue, tasks, retention={"completed": 60})  # type: ignore[arg-type]


def test_a_retention_says_what_it_keeps() -> None:
    retention = Retention(completed=timedelta(hours=1), dead=30)
    assert retention.ages == {JobStatus.COMPLETED: 3600.0, JobStatus.DEAD: 30.0}
    assert repr(retention) == "Retention(completed=3600, dead=30, activity=86400, interval=60)"
    assert Retention().ages == {}


def test_a_worker_keeps_activity_for_its_retention(queue: Queue) -> None:
    assert queue.activity_recorder.keep == 86_400
    Worker(queue, tasks, retention=Retention(activity=timedelta(hours=2)))
    assert queue.activity_recorder.keep == 7200

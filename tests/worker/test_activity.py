"""A worker and the handle that enqueues write what they did into the backend's activity by
minute: every enqueue, every attempt's outcome, wait and run time."""

from __future__ import annotations

from pathlib import Path

import pytest

import queuekit
from queuekit import InvalidOptionError, Queue, Retry, Tasks, Worker
from queuekit.activity import MAX_MINUTES, ActivityCounts, ActivityRecorder, Minute
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.outcomes import JobReport, Outcome

from .options import FAST

tasks = Tasks()


@tasks.task()
async def fine() -> None:
    pass


@tasks.task()
async def flaky() -> None:
    raise Retry(after=0, count_attempt=True)


def total(minutes: list[Minute], queue: str = "default") -> ActivityCounts:
    summed = ActivityCounts(queue)
    for minute in minutes:
        summed = summed + minute.counts
    return summed


async def test_a_worker_counts_enqueues_and_outcomes(queue: Queue) -> None:
    for _ in range(4):
        await queue.enqueue("fine")
    await queue.enqueue("flaky", max_attempts=2)
    # A unique key's holder returned again is not a new job.
    await queue.enqueue("fine", unique_key="once")
    await queue.enqueue("fine", unique_key="once")
    await Worker(queue, tasks, **FAST).run_until_empty()

    counts = total(await queue.activity("default"))
    assert (counts.enqueued, counts.completed, counts.failed, counts.dead) == (6, 5, 1, 1)
    assert sum(counts.run) == 7  # attempts
    assert sum(counts.wait) == 7  # starts
    (minute, *_) = await queue.activity("default", minutes=MAX_MINUTES)
    assert minute.run_p50 is not None and minute.wait_p95 is not None


@pytest.mark.parametrize("minutes", [0, -1, MAX_MINUTES + 1, 1.5, True, "60"])
async def test_a_read_of_too_many_minutes_is_refused(queue: Queue, minutes: object) -> None:
    with pytest.raises(InvalidOptionError):
        await queue.activity("default", minutes=minutes)  # type: ignore[arg-type]


async def test_counts_a_write_could_not_store_go_with_the_next(tmp_path: Path) -> None:
    backend = SQLiteBackend(str(tmp_path / "jobs.db"))
    recorder = ActivityRecorder(backend)
    job = await MemoryBackend().enqueue(queuekit.new_job("t", queue="mail"))
    recorder.enqueued([], [job])  # not requested here: a unique key's holder, not counted
    report = JobReport(job, Outcome.COMPLETED, 0.02)
    recorder.attempt_ended(report)
    assert await recorder.write() == 0  # the backend is not open: nothing stored, nothing lost
    await backend.open()
    try:
        recorder.attempt_ended(report)
        assert await recorder.write() == 1
        assert total(await backend.activity("mail", 5), "mail") == ActivityCounts(
            "mail", completed=2, run=(0,) * 4 + (2,) + (0,) * 14
        )
        assert await recorder.write() == 0
    finally:
        await backend.close()

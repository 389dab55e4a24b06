"""A batch of 100,000 jobs on every backend: enqueued in one `enqueue_many`, its on_dead callback
released by the first dead job, its on_finish once the last job ends, and its counts exact."""

from __future__ import annotations

import pytest

import queuekit
from queuekit import Backend, BatchCounts, JobStatus, Queue
from queuekit.backend import JobFilter

from ..conformance.helpers import claim

SIZE = 100_000
COMPLETED = 1_000


# About a minute on SQLite, and half of one on PostgreSQL, with the suite's other processes beside
# it on two cores.
@pytest.mark.timeout(600)
async def test_a_batch_of_100000_jobs(queue: Queue, backend: Backend) -> None:
    workflow = queuekit.batch(
        *(queuekit.new_job("member", n) for n in range(SIZE)),
        on_success=queuekit.new_job("on_success"),
        on_finish=queuekit.new_job("on_finish"),
        on_dead=queuekit.new_job("on_dead"),
    )
    jobs = await queue.enqueue_many(workflow)
    assert len(jobs) == SIZE + 3 and len({job.id for job in jobs}) == SIZE + 3
    callbacks = jobs[SIZE:]
    assert await queue.batch_counts(workflow.id) == BatchCounts(pending=SIZE)

    done = 0
    while done < COMPLETED:
        for running in await claim(backend, min(500, COMPLETED - done)):
            assert await backend.complete(running.attempt) == JobStatus.COMPLETED
            done += 1
    (dies,) = await claim(backend)
    assert await backend.fail(dies.attempt, "boom", retry_in=None) == JobStatus.DEAD
    assert await _statuses(queue, callbacks) == ["cancelled", "waiting", "pending"]

    after: int | None = 0
    while after is not None:
        step = await backend.cancel_batch(
            JobFilter(JobStatus.PENDING, type="member"), after=after, limit=5_000
        )
        after = step.after
    assert await _statuses(queue, callbacks) == ["cancelled", "pending", "pending"]
    cancelled = SIZE - COMPLETED - 1
    assert await queue.batch_counts(workflow.id) == BatchCounts(
        completed=COMPLETED, dead=1, cancelled=cancelled
    )


async def _statuses(queue: Queue, jobs: list[queuekit.Job]) -> list[str]:
    return [str((await queue.get_job(job.id)).status) for job in jobs]

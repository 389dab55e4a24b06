"""Conformance: batches. A batch's callbacks run exactly once: on success once all its jobs
completed, on finish once all finished, on dead at the first dead job; the backend counts a
batch's jobs by state; `OnFailure.TRIGGER` edges start a job at a parent's death."""

from __future__ import annotations

import queuekit
from queuekit import Backend, BatchCounts, Job, JobStatus, OnFailure, Parent, Queue
from queuekit.backend import JobFilter
from queuekit.batches import BATCH_HEADER

from .helpers import claim, claim_one

W, P, C, X = JobStatus.WAITING, JobStatus.PENDING, JobStatus.COMPLETED, JobStatus.CANCELLED


async def _statuses(queue: Queue, *jobs: Job) -> list[JobStatus]:
    return [(await queue.get_job(job.id)).status for job in jobs]


async def _end(backend: Backend, job: Job, *, dead: bool = False) -> None:
    """Claim `job` (and every other claimable job, which goes back) and end it."""
    ended = False
    for running in await claim(backend, 1000):
        if running.id != job.id:
            assert await backend.snooze(running.attempt, 0.0) == JobStatus.PENDING
        elif dead:
            assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
            ended = True
        else:
            assert await backend.complete(running.attempt) == JobStatus.COMPLETED
            ended = True
    assert ended, f"{job.id} was not claimable"


async def _batch(queue: Queue, size: int = 3) -> tuple[list[Job], Job, Job, Job]:
    """A batch of `size` jobs with the three callbacks, enqueued; (members, success, finish,
    dead)."""
    workflow = queuekit.batch(
        *(queuekit.new_job("member", {"n": n}) for n in range(size)),
        on_success=queuekit.new_job("on_success"),
        on_finish=queuekit.new_job("on_finish"),
        on_dead=queuekit.new_job("on_dead"),
        id="b1",
    )
    jobs = await queue.enqueue_many(workflow)
    assert [job.status for job in jobs] == [P] * size + [W] * 3
    return jobs[:size], jobs[size], jobs[size + 1], jobs[size + 2]


async def test_a_batch_that_completes_runs_on_success_and_on_finish(
    queue: Queue, backend: Backend
) -> None:
    members, success, finish, dead = await _batch(queue)
    for member in members:
        await _end(backend, member)
    assert await _statuses(queue, success, finish, dead) == [P, P, X]
    assert (await queue.get_job(dead.id)).last_error == "no parent died"
    assert await queue.batch_counts("b1") == BatchCounts(completed=3)


async def test_the_first_dead_job_runs_on_dead_and_cancels_on_success(
    queue: Queue, backend: Backend
) -> None:
    members, success, finish, dead = await _batch(queue)
    await _end(backend, members[1], dead=True)
    assert await _statuses(queue, success, finish, dead) == [X, W, P]
    await _end(backend, members[0], dead=True)
    assert await _statuses(queue, dead) == [P]
    await _end(backend, members[2])
    assert await _statuses(queue, success, finish, dead) == [X, P, P]
    counts = await queue.batch_counts("b1")
    assert (counts.dead, counts.completed, counts.total, counts.unfinished) == (2, 1, 3, 0)


async def test_replaying_the_dead_jobs_resumes_on_success_and_runs_nothing_twice(
    queue: Queue, backend: Backend
) -> None:
    members, success, finish, dead = await _batch(queue)
    await _end(backend, members[0], dead=True)
    await _end(backend, dead)
    await _end(backend, members[1])
    await _end(backend, members[2])
    await _end(backend, finish)
    assert await _statuses(queue, success, finish, dead) == [X, C, C]
    assert (await queue.replay(members[0].id)).status == P
    assert await _statuses(queue, success, finish, dead) == [W, C, C]
    await _end(backend, members[0])
    assert await _statuses(queue, success, finish, dead) == [P, C, C]
    assert await queue.batch_counts("b1") == BatchCounts(completed=3)


async def test_a_cancelled_job_is_finished_but_not_dead(queue: Queue, backend: Backend) -> None:
    members, success, finish, dead = await _batch(queue, 2)
    await queue.cancel(members[0].id)
    await _end(backend, members[1])
    assert await _statuses(queue, success, finish, dead) == [X, P, X]
    assert await queue.batch_counts("b1") == BatchCounts(completed=1, cancelled=1)
    assert (await queue.replay(members[0].id)).status == P
    # Any parent's replay brings back a job cancelled because none of its parents died.
    assert await _statuses(queue, success, finish, dead) == [W, P, W]
    await _end(backend, members[0], dead=True)
    assert await _statuses(queue, success, dead) == [X, P]


async def test_a_batch_is_listed_counted_and_named_on_its_jobs(
    queue: Queue, backend: Backend
) -> None:
    members, _, finish, _ = await _batch(queue)
    page = await queue.list_jobs(batch_id="b1")
    assert sorted(job.id for job in page.jobs) == sorted(member.id for member in members)
    read = await queue.get_job(members[0].id)
    assert (read.batch_id, read.workflow_id) == ("b1", "b1")
    callback = await queue.get_job(finish.id)
    assert callback.batch_id is None and callback.headers[BATCH_HEADER] == "b1"
    parents = callback.parents or ()
    assert [p.job_id for p in parents] == [m.id for m in members]
    assert {p.on_failure for p in parents} == {OnFailure.RUN}
    assert await queue.batch_counts("b1") == BatchCounts(pending=3)
    assert await queue.batch_counts("missing") == BatchCounts()
    await claim_one(backend)
    counts = await queue.batch_counts("b1")
    assert (counts.pending, counts.running, counts.total) == (2, 1, 3)


async def test_trigger_edges_decide_at_enqueue_too(queue: Queue, backend: Backend) -> None:
    done = await queue.enqueue("t")
    await _end(backend, done)
    dies = await queue.enqueue("t")
    await _end(backend, dies, dead=True)
    released = await queue.enqueue(
        "t", after=[Parent(done.id, OnFailure.TRIGGER), Parent(dies.id, OnFailure.TRIGGER)]
    )
    assert released.status == P
    cancelled = await queue.enqueue("t", after=[Parent(done.id, OnFailure.TRIGGER)])
    assert cancelled.status == X and cancelled.last_error == "no parent died"
    open_one = await queue.enqueue("t")
    waits = await queue.enqueue(
        "t", after=[Parent(done.id, OnFailure.TRIGGER), Parent(open_one.id, OnFailure.TRIGGER)]
    )
    assert waits.status == W


async def test_a_trigger_cancel_cascades_and_a_deletion_counts_as_finished(
    queue: Queue, backend: Backend
) -> None:
    parent = await queue.enqueue("t")
    on_death = await queue.enqueue("t", after=[Parent(parent.id, OnFailure.TRIGGER)])
    after_it = await queue.enqueue("t", after=[on_death])
    assert await queue.delete_job(parent.id)
    assert await _statuses(queue, on_death, after_it) == [X, X]
    assert (await queue.get_job(after_it.id)).last_error == f"parent {on_death.id} cancelled"


async def test_a_batch_of_2000_with_bulk_operations(queue: Queue, backend: Backend) -> None:
    size = 2000
    workflow = queuekit.batch(
        *(queuekit.new_job("member", n) for n in range(size)),
        on_finish=queuekit.new_job("on_finish"),
        on_dead=queuekit.new_job("on_dead"),
        on_success=queuekit.new_job("on_success"),
    )
    jobs = await queue.enqueue_many(workflow)
    success, finish, dead = jobs[size:]
    first = await claim_one(backend)
    assert await backend.fail(first.attempt, "boom", retry_in=None) == JobStatus.DEAD
    assert await _statuses(queue, success, finish, dead) == [X, W, P]
    after = 0
    while True:
        step = await backend.cancel_batch(
            JobFilter(JobStatus.PENDING, type="member"), after=after, limit=500
        )
        if step.after is None:
            break
        after = step.after
    assert await _statuses(queue, success, finish, dead) == [X, P, P]
    counts = await queue.batch_counts(workflow.id)
    assert (counts.dead, counts.cancelled, counts.total) == (1, size - 1, size)

"""Conformance: dependencies. A job waits for its parents, is released or cancelled by the
write that ends them, comes back when a dead parent is replayed, and never waits forever."""

from __future__ import annotations

import random

import pytest

import queuekit
from queuekit import (
    Backend,
    Job,
    JobStatus,
    OnFailure,
    Parent,
    Queue,
    UnknownParentError,
)

from .helpers import claim, claim_one

CANCEL, RUN, IGNORE = OnFailure.CANCEL, OnFailure.RUN, OnFailure.IGNORE


async def _status(queue: Queue, job: Job) -> JobStatus:
    return (await queue.get_job(job.id)).status


async def _statuses(queue: Queue, *jobs: Job) -> list[JobStatus]:
    return [await _status(queue, job) for job in jobs]


async def _run(backend: Backend, job: Job) -> Job:
    """Claim `job` (the only claimable one) and return it running."""
    running = await claim_one(backend)
    assert running.id == job.id, f"claimed {running.id}, expected {job.id}"
    return running


async def _complete(backend: Backend, job: Job) -> None:
    assert await backend.complete((await _run(backend, job)).attempt) == JobStatus.COMPLETED


async def _kill(backend: Backend, job: Job) -> None:
    """Run `job` to dead."""
    running = await _run(backend, job)
    assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD


async def test_a_chain_runs_one_job_after_another(queue: Queue, backend: Backend) -> None:
    first = await queue.enqueue("step", 1)
    second = await queue.enqueue("step", 2, after=[first])
    third = await queue.enqueue("step", 3, after=[second.id])
    assert (second.status, third.status) == (JobStatus.WAITING, JobStatus.WAITING)
    assert [job.id for job in await claim(backend, 10)] == [first.id]
    assert await backend.complete((await queue.get_job(first.id)).attempt)
    assert await _statuses(queue, second, third) == [JobStatus.PENDING, JobStatus.WAITING]
    await _complete(backend, second)
    await _complete(backend, third)
    assert await _statuses(queue, first, second, third) == [JobStatus.COMPLETED] * 3


async def test_get_job_shows_parents_and_dependents(queue: Queue) -> None:
    left = await queue.enqueue("t")
    right = await queue.enqueue("t")
    child = await queue.enqueue("t", after=[left, Parent(right.id, RUN)], workflow_id="w1")
    grandchild = await queue.enqueue("t", after=[child], workflow_id="w1")
    read = await queue.get_job(child.id)
    assert read.parents == (Parent(left.id), Parent(right.id, RUN))
    assert read.dependents == (grandchild.id,)
    assert read.workflow_id == "w1"
    assert (await queue.get_job(left.id)).dependents == (child.id,)
    assert (await queue.get_job(left.id)).parents == ()
    got = await queue.backend.get_jobs([grandchild.id, "missing", left.id])
    assert [job.id for job in got] == [grandchild.id, left.id]
    assert got[0].parents == (Parent(child.id),) and got[1].dependents == (child.id,)


async def test_a_workflow_is_listed_by_its_id(queue: Queue) -> None:
    first = await queue.enqueue("t", workflow_id="orders-7")
    await queue.enqueue("t")
    second = await queue.enqueue("t", after=[first], workflow_id="orders-7")
    other = await queue.enqueue("t", workflow_id="orders-7", queue="other")
    page = await queue.list_jobs(workflow_id="orders-7")
    assert [job.id for job in page.jobs] == [other.id, second.id, first.id]
    waiting = await queue.list_jobs(workflow_id="orders-7", status=JobStatus.WAITING)
    assert [job.id for job in waiting.jobs] == [second.id]


async def test_a_whole_workflow_goes_in_one_call(queue: Queue, backend: Backend) -> None:
    root = queuekit.new_job("t", 0)
    fan = [queuekit.new_job("t", n, after=[root]) for n in range(5)]
    join = queuekit.new_job("t", "join", after=fan)
    stored = await queue.enqueue_many([root, *fan, join])
    assert [job.status for job in stored] == [JobStatus.PENDING] + [JobStatus.WAITING] * 6
    await _complete(backend, stored[0])
    running = await claim(backend, 10)
    assert sorted(job.id for job in running) == sorted(job.id for job in stored[1:6])
    for job in running[:-1]:
        assert await backend.complete(job.attempt)
    assert await _status(queue, stored[6]) == JobStatus.WAITING
    assert await backend.complete(running[-1].attempt)
    await _complete(backend, stored[6])


async def test_a_job_cancelled_at_enqueue_decides_the_later_jobs_of_its_call(
    queue: Queue, backend: Backend
) -> None:
    dead = await queue.enqueue("t", max_attempts=1)
    await _kill(backend, dead)
    holder = await queue.enqueue("t", unique_key="k")
    doomed = queuekit.new_job("t", after=[dead])
    follows = queuekit.new_job("t", after=[doomed])
    runs_anyway = queuekit.new_job("t", after=[Parent(doomed.id, RUN)])
    answered = queuekit.new_job("t", unique_key="k", after=[Parent(doomed.id, IGNORE)])
    stored = await queue.enqueue_many([doomed, follows, runs_anyway, answered])
    assert [job.status for job in stored] == [JobStatus.CANCELLED, JobStatus.CANCELLED] + [
        JobStatus.PENDING
    ] * 2
    assert stored[3].id == holder.id
    assert (await queue.get_job(follows.id)).last_error == f"parent {doomed.id} cancelled"
    assert (await queue.get_job(doomed.id)).dependents == (follows.id, runs_anyway.id)
    assert (await queue.get_job(holder.id)).parents == ()


async def test_a_parent_missing_or_later_in_the_call_stores_nothing(queue: Queue) -> None:
    first = queuekit.new_job("t")
    orphan = queuekit.new_job("t", after=["no-such-job"])
    with pytest.raises(UnknownParentError) as raised:
        await queue.enqueue_many([first, orphan])
    assert raised.value.job_id == "no-such-job"
    assert await queue.backend.get_job(first.id) is None
    later = queuekit.new_job("t")
    early = queuekit.new_job("t", after=[later])
    with pytest.raises(UnknownParentError):
        await queue.enqueue_many([early, later])
    assert await queue.backend.get_job(later.id) is None
    with pytest.raises(UnknownParentError):
        await queue.enqueue("t", after=["no-such-job"])
    assert (await queue.list_jobs()).jobs == []


async def test_parents_that_already_finished_decide_at_enqueue(
    queue: Queue, backend: Backend
) -> None:
    done = await queue.enqueue("t")
    await _complete(backend, done)
    assert (await queue.enqueue("t", after=[done])).status == JobStatus.PENDING
    await claim(backend, 10)
    dead = await queue.enqueue("t", max_attempts=1)
    await _kill(backend, dead)
    cancelled = await queue.enqueue("t", after=[dead])
    assert cancelled.status == JobStatus.CANCELLED
    assert (await queue.get_job(cancelled.id)).last_error == f"parent {dead.id} dead"
    assert (await queue.enqueue("t", after=[Parent(dead.id, RUN)])).status == JobStatus.PENDING
    assert (await queue.enqueue("t", after=[Parent(dead.id, IGNORE)])).status == JobStatus.PENDING


async def test_a_fan_in_waits_for_every_parent(queue: Queue, backend: Backend) -> None:
    parents = await queue.enqueue_many(queuekit.new_job("t", n) for n in range(20))
    child = await queue.enqueue("t", "join", after=parents)
    running = await claim(backend, 20)
    for job in running[:-1]:
        assert await backend.complete(job.attempt)
    assert await _status(queue, child) == JobStatus.WAITING
    assert await claim(backend, 10) == []
    assert await backend.complete(running[-1].attempt)
    assert await _status(queue, child) == JobStatus.PENDING


async def test_a_dead_parent_cancels_its_dependents_and_theirs(
    queue: Queue, backend: Backend
) -> None:
    parent = await queue.enqueue("t", max_attempts=1)
    child = await queue.enqueue("t", after=[parent])
    grandchild = await queue.enqueue("t", after=[child])
    bystander = await queue.enqueue("t", queue="other")
    await _kill(backend, parent)
    assert await _statuses(queue, child, grandchild) == [JobStatus.CANCELLED] * 2
    assert (await queue.get_job(child.id)).last_error == f"parent {parent.id} dead"
    assert (await queue.get_job(grandchild.id)).last_error == f"parent {child.id} cancelled"
    assert await _status(queue, bystander) == JobStatus.PENDING
    assert (await queue.stats()).waiting == 0


async def test_run_and_ignore_let_a_dependent_run_after_a_failure(
    queue: Queue, backend: Backend
) -> None:
    failing = await queue.enqueue("t", max_attempts=1)
    healthy = await queue.enqueue("t")
    runs = await queue.enqueue("t", after=[Parent(failing.id, RUN), healthy])
    ignores = await queue.enqueue("t", after=[Parent(failing.id, IGNORE)])
    await _kill(backend, failing)
    assert await _statuses(queue, runs, ignores) == [JobStatus.WAITING, JobStatus.PENDING]
    await claim(backend, 10)  # healthy and ignores
    assert await backend.complete((await queue.get_job(healthy.id)).attempt)
    assert await _status(queue, runs) == JobStatus.PENDING


async def test_replaying_a_dead_parent_resumes_the_workflow(queue: Queue, backend: Backend) -> None:
    parent = await queue.enqueue("t", max_attempts=1)
    child = await queue.enqueue("t", after=[parent])
    grandchild = await queue.enqueue("t", after=[child])
    await _kill(backend, parent)
    assert await _statuses(queue, child, grandchild) == [JobStatus.CANCELLED] * 2
    assert (await queue.replay(parent.id)).status == JobStatus.PENDING
    back = await queue.get_job(child.id)
    assert back.status == JobStatus.WAITING
    assert back.finished_at is None and back.last_error is None
    assert await _status(queue, grandchild) == JobStatus.WAITING
    await _complete(backend, parent)
    await _complete(backend, child)
    await _complete(backend, grandchild)


async def test_a_replay_counts_each_parent_once(queue: Queue, backend: Backend) -> None:
    """P's death cancels A (after P) and C (after P and A); P's replay brings both back, and C
    then waits for exactly P and A, whichever order the replay reached them in."""
    parent = await queue.enqueue("t", max_attempts=1)
    middle = await queue.enqueue("t", after=[parent])
    last = await queue.enqueue("t", after=[parent, middle])
    await _kill(backend, parent)
    await queue.replay(parent.id)
    assert await _statuses(queue, middle, last) == [JobStatus.WAITING] * 2
    await _complete(backend, parent)
    await _complete(backend, middle)
    assert await _status(queue, last) == JobStatus.PENDING


async def test_a_replay_counts_a_parent_brought_back_after_its_dependent(
    queue: Queue, backend: Backend
) -> None:
    """P's death cancels Y, X (after Y) and D (after P, and X with run); P's replay brings D
    back, and X too, through Y: D waits for X as well as P, whichever came back first."""
    parent = await queue.enqueue("t", max_attempts=1)
    middle = await queue.enqueue("t", after=[parent])
    late = await queue.enqueue("t", after=[middle])
    last = await queue.enqueue("t", after=[parent, Parent(late.id, RUN)])
    await _kill(backend, parent)
    assert await _statuses(queue, middle, late, last) == [JobStatus.CANCELLED] * 3
    await queue.replay(parent.id)
    assert await _statuses(queue, middle, late, last) == [JobStatus.WAITING] * 3
    await _complete(backend, parent)
    await _complete(backend, middle)
    assert await _status(queue, last) == JobStatus.WAITING, "it waits for the one after"
    await _complete(backend, late)
    assert await _status(queue, last) == JobStatus.PENDING


async def test_a_released_job_still_expires(queue: Queue, backend: Backend) -> None:
    parent = await queue.enqueue("t")
    child = await queue.enqueue("t", after=[parent], expires_in=0.05)
    await _complete(backend, parent)

    async def expired() -> bool:
        await backend.expire()
        return await _status(queue, child) == JobStatus.CANCELLED

    from ..waiting import eventually

    await eventually(expired, "the released job expired")
    assert (await queue.get_job(child.id)).last_error == "expired"


async def test_a_replayed_parent_is_waited_for_again(queue: Queue, backend: Backend) -> None:
    failing = await queue.enqueue("t", max_attempts=1)
    other = await queue.enqueue("t")
    child = await queue.enqueue("t", after=[Parent(failing.id, RUN), other])
    await _kill(backend, failing)
    await queue.replay(failing.id)
    assert await backend.complete((await _run(backend, other)).attempt)
    assert await _status(queue, child) == JobStatus.WAITING, "it waits for the replayed parent"
    await _complete(backend, failing)
    assert await _status(queue, child) == JobStatus.PENDING


async def test_a_replay_leaves_dependents_cancelled_by_another_parent(
    queue: Queue, backend: Backend
) -> None:
    left = await queue.enqueue("t", max_attempts=1)
    right = await queue.enqueue("t", max_attempts=1)
    child = await queue.enqueue("t", after=[left, right])
    running = await claim(backend, 2)
    for job in running:
        assert await backend.fail(job.attempt, "boom", retry_in=None) == JobStatus.DEAD
    first = (await queue.get_job(child.id)).last_error
    assert first in (f"parent {left.id} dead", f"parent {right.id} dead")
    killer, other = (left, right) if first == f"parent {left.id} dead" else (right, left)
    await queue.replay(killer.id)
    read = await queue.get_job(child.id)
    assert read.status == JobStatus.CANCELLED, "the other parent is still dead"
    await queue.replay(other.id)
    assert await _status(queue, child) == JobStatus.WAITING


async def test_cancelling_a_waiting_job_cancels_its_dependents(
    queue: Queue, backend: Backend
) -> None:
    parent = await queue.enqueue("t")
    child = await queue.enqueue("t", after=[parent])
    grandchild = await queue.enqueue("t", after=[child])
    runs_anyway = await queue.enqueue("t", after=[Parent(child.id, RUN)])
    assert (await queue.cancel(child.id)).status == JobStatus.CANCELLED
    assert await _status(queue, grandchild) == JobStatus.CANCELLED
    assert await _status(queue, runs_anyway) == JobStatus.PENDING
    await _complete(backend, parent)
    assert await _status(queue, child) == JobStatus.CANCELLED


async def test_cancel_all_of_the_waiting(queue: Queue) -> None:
    parent = await queue.enqueue("t")
    children = [await queue.enqueue("t", n, after=[parent]) for n in range(3)]
    assert await queue.cancel_all(status=JobStatus.WAITING) == 3
    assert await _statuses(queue, *children) == [JobStatus.CANCELLED] * 3
    assert await _status(queue, parent) == JobStatus.PENDING


@pytest.mark.parametrize("calls", ["one call", "a call each"])
async def test_deleting_an_unfinished_parent_decides_its_dependents(
    queue: Queue, calls: str
) -> None:
    if calls == "one call":
        parent, cancelled, released = await queue.enqueue_many(
            [
                first := queuekit.new_job("t"),
                queuekit.new_job("t", after=[first]),
                queuekit.new_job("t", after=[Parent(first.id, RUN)]),
            ]
        )
    else:
        parent = await queue.enqueue("t")
        cancelled = await queue.enqueue("t", after=[parent])
        released = await queue.enqueue("t", after=[Parent(parent.id, RUN)])
    await queue.delete_job(parent.id)
    read = await queue.get_job(cancelled.id)
    assert read.status == JobStatus.CANCELLED
    assert read.last_error == f"parent {parent.id} deleted"
    assert await _status(queue, released) == JobStatus.PENDING


async def test_a_call_with_keys_links_the_jobs_it_stores(queue: Queue, backend: Backend) -> None:
    """A job of the call answered by the holder of its key is no dependent: only the one
    stored is listed, and released by the parent's end."""
    parent, child, answered = await queue.enqueue_many(
        [
            first := queuekit.new_job("t"),
            queuekit.new_job("t", 1, unique_key="k", after=[Parent(first.id, RUN)]),
            queuekit.new_job("t", 2, unique_key="k", after=[first]),
        ]
    )
    assert answered.id == child.id and child.status == JobStatus.WAITING
    read_child = await queue.get_job(child.id)
    assert read_child.parents == (Parent(parent.id, RUN),)
    assert (await queue.get_job(parent.id)).dependents == (child.id,)
    await _complete(backend, parent)
    assert await _status(queue, child) == JobStatus.PENDING


async def test_a_job_reusing_a_deleted_dependents_id_is_no_dependent(
    queue: Queue, backend: Backend
) -> None:
    """A dependent deleted takes its edges with it: a later job given its id waits for
    nothing, and the old parent's end leaves it alone."""
    parent, child = await queue.enqueue_many(
        [first := queuekit.new_job("t"), queuekit.new_job("t", id="reused", after=[first])]
    )
    assert await queue.delete_job(child.id)
    newcomer = await queue.enqueue("t", id="reused", queue="elsewhere")
    assert newcomer.status == JobStatus.PENDING
    read = await queue.get_job(parent.id)
    assert read.dependents == ()
    await _kill(backend, parent)
    read_newcomer = await queue.get_job("reused")
    assert (read_newcomer.status, read_newcomer.parents) == (JobStatus.PENDING, ())


async def test_a_lease_rescued_to_dead_cancels_dependents(queue: Queue, backend: Backend) -> None:
    parent = await queue.enqueue("t", max_attempts=1)
    child = await queue.enqueue("t", after=[parent])
    (running,) = await claim(backend, lease=0.05)
    assert running.id == parent.id

    async def rescued() -> bool:
        await backend.rescue()
        return await _status(queue, parent) == JobStatus.DEAD

    from ..waiting import eventually

    await eventually(rescued, "the lease ran out and the rescuer took the job")
    assert await _status(queue, child) == JobStatus.CANCELLED


async def test_a_waiting_job_is_never_claimed_nor_made_due(queue: Queue, backend: Backend) -> None:
    parent = await queue.enqueue("t", delay=3600)
    child = await queue.enqueue("t", after=[parent])
    assert (await queue.run_now(child.id)).status == JobStatus.WAITING
    assert await claim(backend, 10) == []
    stats = await queue.stats()
    assert (stats.waiting, stats.pending, stats.total) == (1, 1, 2)
    await queue.run_now(parent.id)
    await _complete(backend, parent)
    released = await queue.get_job(child.id)
    finished_at = (await queue.get_job(parent.id)).finished_at
    assert released.status == JobStatus.PENDING
    assert finished_at is not None and released.scheduled_at >= finished_at


async def _parents(queue: Queue, job: Job) -> tuple[Parent, ...]:
    parents = (await queue.get_job(job.id)).parents
    assert parents is not None, "get_job reads a job's parents"
    return parents


def _random_dag(size: int, rng: random.Random) -> list[queuekit.NewJob]:
    jobs: list[queuekit.NewJob] = []
    for n in range(size):
        parents = rng.sample(jobs, min(len(jobs), rng.choice([0, 1, 1, 2, 3])))
        policies = [Parent(p.id, rng.choice([CANCEL, CANCEL, RUN, IGNORE])) for p in parents]
        jobs.append(queuekit.new_job("t", n, after=policies, max_attempts=1))
    return jobs


async def test_a_random_dag_runs_every_job_once_after_its_parents(
    queue: Queue, backend: Backend
) -> None:
    rng = random.Random(18)
    jobs = await queue.enqueue_many(_random_dag(1000, rng))
    parents = {job.id: {p.job_id for p in await _parents(queue, job)} for job in jobs}
    done: set[str] = set()
    while batch := await claim(backend, 100):
        for job in batch:
            assert job.id not in done, "ran twice"
            assert parents[job.id] <= done, "ran before a parent completed"
        for job in batch:
            assert await backend.complete(job.attempt)
            done.add(job.id)
    assert done == set(parents)


async def test_no_outcome_leaves_a_job_waiting_forever(queue: Queue, backend: Backend) -> None:
    """Random DAGs whose jobs complete, die, are cancelled or deleted while waiting, and whose
    dead are sometimes replayed: once nothing is left to claim, nothing waits."""
    rng = random.Random(1818)
    for _ in range(3):
        jobs = await queue.enqueue_many(_random_dag(150, rng))
        ids = [job.id for job in jobs]
        while True:
            for job_id in rng.sample(ids, 3):
                action = rng.choice(["cancel", "delete", "replay", "none"])
                read = await queue.backend.get_job(job_id)
                if read is None or read.status == JobStatus.RUNNING:
                    continue
                if action == "cancel":
                    await queue.cancel(job_id)
                elif action == "delete":
                    await queue.delete_job(job_id)
                elif action == "replay":
                    await queue.replay(job_id)
            batch = await claim(backend, 20)
            if not batch:
                break
            for job in batch:
                if rng.random() < 0.25:
                    assert await backend.fail(job.attempt, "boom", retry_in=None)
                else:
                    assert await backend.complete(job.attempt)
        left = await queue.list_jobs(status=JobStatus.WAITING)
        assert left.jobs == [], [job.id for job in left.jobs]
        await queue.delete_all(status=JobStatus.COMPLETED)

"""Conformance: unique keys, second version. A job holds its key while live and, after it ends
in one of its `unique_states`, for its `unique_for` period; `unique_payload` makes the key
from the payload; `on_conflict="replace"` rewrites an unstarted holder."""

from __future__ import annotations

from datetime import timedelta

import queuekit
from queuekit import Backend, Job, JobStatus, OnConflict, Queue

from ..waiting import eventually
from .helpers import claim, claim_one

DAY = 86_400.0


async def _complete(backend: Backend, job: Job) -> None:
    running = await claim_one(backend)
    assert running.id == job.id
    assert await backend.complete(running.attempt) == JobStatus.COMPLETED


async def _kill(backend: Backend, job: Job) -> None:
    running = await claim_one(backend)
    assert running.id == job.id
    assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD


async def _after(queue: Queue, instant: Job, seconds: float) -> None:
    """Return once the backend's clock is `seconds` past `instant`'s creation (it is read
    through the creation times of throwaway jobs on another queue: the backend's own clock)."""

    async def past() -> bool:
        probe = await queue.enqueue("probe", queue="clock")
        return (probe.created_at - instant.created_at).total_seconds() > seconds

    await eventually(past, f"the backend's clock passed {seconds} s")


async def test_a_completed_job_keeps_its_key_for_its_period(queue: Queue, backend: Backend) -> None:
    first = await queue.enqueue("digest", {"day": 1}, unique_key="acct:7", unique_for=DAY)
    await _complete(backend, first)
    again = await queue.enqueue("digest", {"day": 1}, unique_key="acct:7", unique_for=DAY)
    assert again.id == first.id and again.status == JobStatus.COMPLETED
    assert await claim(backend) == []
    other = await queue.enqueue("digest", unique_key="acct:8", unique_for=DAY)
    assert other.id != first.id


async def test_a_period_holds_through_completed_only_by_default(
    queue: Queue, backend: Backend
) -> None:
    dies = await queue.enqueue("digest", unique_key="k", unique_for=DAY)
    await _kill(backend, dies)
    after_death = await queue.enqueue("digest", unique_key="k", unique_for=DAY)
    assert after_death.id != dies.id and after_death.status == JobStatus.PENDING
    assert (await queue.cancel(after_death.id)).status == JobStatus.CANCELLED
    after_cancel = await queue.enqueue("digest", unique_key="k", unique_for=DAY)
    assert after_cancel.id not in {dies.id, after_death.id}


async def test_unique_states_choose_the_finished_states_that_hold(
    queue: Queue, backend: Backend
) -> None:
    completes = await queue.enqueue("t", unique_key="a", unique_states=["dead"])
    await _complete(backend, completes)
    fresh = await queue.enqueue("t", unique_key="a", unique_states=["dead"])
    assert fresh.id != completes.id
    assert (await queue.cancel(fresh.id)).status == JobStatus.CANCELLED
    dies = await queue.enqueue("t", unique_key="b", unique_states=["dead", "cancelled"])
    await _kill(backend, dies)
    held = await queue.enqueue("t", unique_key="b")
    assert held.id == dies.id and held.status == JobStatus.DEAD


async def test_a_hold_ends_with_its_period(queue: Queue, backend: Backend) -> None:
    first = await queue.enqueue("t", unique_key="k", unique_for=0.2)
    await _complete(backend, first)
    stored: list[Job] = []

    async def let_go() -> bool:
        job = await queue.enqueue("t", unique_key="k", unique_for=0.2)
        if job.id == first.id:
            return False
        stored.append(job)
        return True

    await eventually(let_go, "a completed job's key freed at the end of its period")
    (second,) = stored
    assert second.status == JobStatus.PENDING
    assert (second.created_at - first.created_at).total_seconds() >= 0.2
    assert (await queue.get_job(first.id)).status == JobStatus.COMPLETED
    assert (await queue.enqueue("t", unique_key="k")).id == second.id


async def test_a_live_job_holds_its_key_past_its_period(queue: Queue) -> None:
    first = await queue.enqueue("t", unique_key="k", unique_for=timedelta(milliseconds=50))
    await _after(queue, first, 0.05)
    assert (await queue.enqueue("t", unique_key="k", unique_for=0.05)).id == first.id


async def test_unique_payload_makes_the_key_from_the_payload(queue: Queue) -> None:
    first = await queue.enqueue("sync", {"a": 1, "b": [1, 2]}, unique_payload=True)
    same = await queue.enqueue("sync", {"b": [1, 2], "a": 1}, unique_payload=True)
    assert same.id == first.id
    assert (await queue.enqueue("sync", {"a": 2}, unique_payload=True)).id != first.id
    assert (await queue.enqueue("other", {"a": 1, "b": [1, 2]}, unique_payload=True)).id not in {
        first.id
    }
    keyed = await queue.enqueue(
        "sync", {"a": 1, "b": [1, 2]}, unique_key="acct", unique_payload=True
    )
    assert keyed.id != first.id
    assert (keyed.unique_key or "").startswith("acct#")
    assert (first.unique_key or "").startswith("sync#")


async def test_replace_rewrites_a_pending_holder(queue: Queue, backend: Backend) -> None:
    first = await queue.enqueue("t", {"v": 1}, unique_key="k", delay=DAY, priority=5)
    replaced = await queue.enqueue("t", {"v": 2}, unique_key="k", on_conflict="replace")
    assert replaced.id == first.id and replaced.payload == {"v": 2}
    assert replaced.scheduled_at < first.scheduled_at and replaced.priority == 5
    assert replaced.created_at == first.created_at
    running = await claim_one(backend)
    assert (running.id, running.payload) == (first.id, {"v": 2})


async def test_replace_pushes_a_pending_holder_later(queue: Queue, backend: Backend) -> None:
    first = await queue.enqueue("t", {"v": 1}, unique_key="k")
    later = await queue.enqueue(
        "t", {"v": 2}, unique_key="k", on_conflict=OnConflict.REPLACE, delay=DAY
    )
    assert later.id == first.id and later.payload == {"v": 2}
    assert (later.scheduled_at - first.created_at).total_seconds() > DAY - 60
    assert await claim(backend) == []
    assert (await queue.run_now(first.id)).scheduled_at <= (
        await queue.enqueue("p", queue="x")
    ).created_at
    assert (await claim_one(backend)).payload == {"v": 2}


async def test_replace_rewrites_a_failed_holder_waiting_for_its_retry(
    queue: Queue, backend: Backend
) -> None:
    first = await queue.enqueue("t", {"v": 1}, unique_key="k")
    running = await claim_one(backend)
    assert await backend.fail(running.attempt, "later", retry_in=DAY) == JobStatus.FAILED
    replaced = await queue.enqueue("t", {"v": 2}, unique_key="k", on_conflict="replace")
    assert (replaced.id, replaced.status, replaced.payload) == (
        first.id,
        JobStatus.FAILED,
        {"v": 2},
    )
    again = await claim_one(backend)
    assert (again.id, again.attempts, again.payload) == (first.id, 2, {"v": 2})


async def test_replace_leaves_a_started_or_finished_holder(queue: Queue, backend: Backend) -> None:
    first = await queue.enqueue("t", {"v": 1}, unique_key="k", unique_for=DAY)
    running = await claim_one(backend)
    during = await queue.enqueue("t", {"v": 2}, unique_key="k", on_conflict="replace")
    assert (during.id, during.status, during.payload) == (first.id, JobStatus.RUNNING, {"v": 1})
    assert await backend.complete(running.attempt, '"done"') == JobStatus.COMPLETED
    after = await queue.enqueue("t", {"v": 3}, unique_key="k", on_conflict="replace")
    assert (after.id, after.status, after.payload, after.result) == (
        first.id,
        JobStatus.COMPLETED,
        {"v": 1},
        "done",
    )


async def test_replace_rewrites_a_waiting_holder(queue: Queue, backend: Backend) -> None:
    parent = await queue.enqueue("parent")
    child = await queue.enqueue("child", {"v": 1}, unique_key="k", after=[parent])
    replaced = await queue.enqueue("child", {"v": 2}, unique_key="k", on_conflict="replace")
    assert (replaced.id, replaced.status, replaced.payload) == (
        child.id,
        JobStatus.WAITING,
        {"v": 2},
    )
    await _complete(backend, parent)
    assert (await claim_one(backend)).payload == {"v": 2}


async def test_one_enqueue_many_acts_as_enqueues_one_by_one(queue: Queue) -> None:
    jobs = await queue.enqueue_many(
        [
            queuekit.new_job("t", {"v": 1}, unique_key="r"),
            queuekit.new_job("t", {"v": 2}, unique_key="r", on_conflict="replace"),
            queuekit.new_job("t", {"v": 3}, unique_key="r", on_conflict="replace"),
            queuekit.new_job("t", {"v": 1}, unique_key="n"),
            queuekit.new_job("t", {"v": 2}, unique_key="n"),
        ]
    )
    assert len({job.id for job in jobs[:3]}) == 1 and jobs[2].payload == {"v": 3}
    assert jobs[3].id == jobs[4].id and jobs[4].payload == {"v": 1}
    assert (await queue.get_job(jobs[0].id)).payload == {"v": 3}
    assert (await queue.stats()).pending == 2


async def test_a_replay_never_makes_a_second_holder(queue: Queue, backend: Backend) -> None:
    dead = await queue.enqueue("t", unique_key="k")
    await _kill(backend, dead)
    newer = await queue.enqueue("t", unique_key="k")
    assert newer.id != dead.id
    assert (await queue.replay(dead.id)).status == JobStatus.DEAD
    assert (await queue.cancel(newer.id)).status == JobStatus.CANCELLED
    holder = await queue.enqueue("t", unique_key="h", unique_states=["dead"])
    await _kill(backend, holder)
    assert (await queue.replay(holder.id)).status == JobStatus.PENDING
    assert (await queue.enqueue("t", unique_key="h")).id == holder.id


async def test_a_holder_survives_pruning_until_its_period_ends(
    queue: Queue, backend: Backend
) -> None:
    holder = await queue.enqueue("t", unique_key="k", unique_for=DAY)
    await _complete(backend, holder)
    plain = await queue.enqueue("t")
    await _complete(backend, plain)
    assert await backend.prune(0.0, [JobStatus.COMPLETED]) == 1
    assert await backend.get_job(plain.id) is None
    assert (await queue.get_job(holder.id)).status == JobStatus.COMPLETED
    assert (await queue.enqueue("t", unique_key="k")).id == holder.id


async def test_a_deleted_holder_frees_its_key(queue: Queue, backend: Backend) -> None:
    holder = await queue.enqueue("t", unique_key="k", unique_for=DAY)
    await _complete(backend, holder)
    assert await queue.delete_job(holder.id)
    assert (await queue.enqueue("t", unique_key="k")).id != holder.id

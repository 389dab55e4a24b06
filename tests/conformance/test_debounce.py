"""Conformance: debounce. An enqueue with the debounce key of an unstarted job gives it the
latest payload and pushes its start back, never past its first enqueue plus `debounce_max`."""

from __future__ import annotations

import queuekit
from queuekit import Backend, JobStatus, Queue

from .helpers import claim, claim_one, claim_when_due

HOUR = 3600.0


def _seconds_between(later: object, earlier: object) -> float:
    from datetime import datetime

    assert isinstance(later, datetime) and isinstance(earlier, datetime)
    return (later - earlier).total_seconds()


async def test_debounce_keeps_the_latest_payload_and_pushes_back(queue: Queue) -> None:
    first = await queue.enqueue("reindex", {"v": 1}, debounce_key="doc:1", delay=HOUR)
    second = await queue.enqueue("reindex", {"v": 2}, debounce_key="doc:1", delay=HOUR)
    assert second.id == first.id and second.payload == {"v": 2}
    assert second.scheduled_at >= first.scheduled_at
    assert second.debounce_key == "doc:1" and second.created_at == first.created_at
    other = await queue.enqueue("reindex", {"v": 1}, debounce_key="doc:2", delay=HOUR)
    elsewhere = await queue.enqueue("reindex", debounce_key="doc:1", delay=HOUR, queue="other")
    assert len({first.id, other.id, elsewhere.id}) == 3
    assert (await queue.stats()).pending == 2


async def test_debounce_max_caps_the_push_back(queue: Queue) -> None:
    first = await queue.enqueue("t", {"v": 1}, debounce_key="k", delay=HOUR, debounce_max=2 * HOUR)
    assert 0 <= _seconds_between(first.scheduled_at, first.created_at) - HOUR < 1e-3
    pushed = await queue.enqueue("t", {"v": 2}, debounce_key="k", delay=3 * HOUR)
    assert pushed.id == first.id and pushed.payload == {"v": 2}
    assert abs(_seconds_between(pushed.scheduled_at, first.created_at) - 2 * HOUR) < 1e-3


async def test_a_job_cannot_be_put_off_past_its_max(queue: Queue, backend: Backend) -> None:
    first = await queue.enqueue("t", {"v": 1}, debounce_key="k", delay=HOUR, debounce_max=0.2)
    assert abs(_seconds_between(first.scheduled_at, first.created_at) - 0.2) < 1e-3
    again = await queue.enqueue("t", {"v": 2}, debounce_key="k", delay=HOUR)
    assert again.id == first.id and again.scheduled_at == first.scheduled_at
    started = await claim_when_due(backend)
    assert (started.id, started.payload) == (first.id, {"v": 2})


async def test_debounce_can_pull_a_start_earlier(queue: Queue, backend: Backend) -> None:
    first = await queue.enqueue("t", {"v": 1}, debounce_key="k", delay=HOUR)
    now = await queue.enqueue("t", {"v": 2}, debounce_key="k")
    assert now.id == first.id and now.scheduled_at < first.scheduled_at
    assert (await claim_one(backend)).payload == {"v": 2}


async def test_a_started_job_frees_its_debounce_key(queue: Queue, backend: Backend) -> None:
    first = await queue.enqueue("t", {"v": 1}, debounce_key="k")
    running = await claim_one(backend)
    assert running.id == first.id
    second = await queue.enqueue("t", {"v": 2}, debounce_key="k")
    assert second.id != first.id and second.status == JobStatus.PENDING
    third = await queue.enqueue("t", {"v": 3}, debounce_key="k")
    assert third.id == second.id and third.payload == {"v": 3}
    assert (await queue.get_job(first.id)).payload == {"v": 1}


async def test_a_waiting_job_is_debounced(queue: Queue, backend: Backend) -> None:
    parent = await queue.enqueue("parent")
    child = await queue.enqueue("t", {"v": 1}, debounce_key="k", after=[parent])
    again = await queue.enqueue("t", {"v": 2}, debounce_key="k")
    assert (again.id, again.status, again.payload) == (child.id, JobStatus.WAITING, {"v": 2})


async def test_one_enqueue_many_debounces_in_order(queue: Queue) -> None:
    jobs = await queue.enqueue_many(
        [queuekit.new_job("t", {"v": n}, debounce_key="k", delay=HOUR) for n in range(4)]
    )
    assert len({job.id for job in jobs}) == 1 and jobs[-1].payload == {"v": 3}
    assert (await queue.get_job(jobs[0].id)).payload == {"v": 3}


async def test_a_replay_never_makes_a_second_unstarted_holder(
    queue: Queue, backend: Backend
) -> None:
    dead = await queue.enqueue("t", debounce_key="k")
    running = await claim_one(backend)
    assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
    newer = await queue.enqueue("t", debounce_key="k")
    assert newer.id != dead.id
    assert (await queue.replay(dead.id)).status == JobStatus.DEAD
    assert (await claim_one(backend)).id == newer.id
    assert (await queue.replay(dead.id)).status == JobStatus.PENDING
    assert (await queue.enqueue("t", {"v": 9}, debounce_key="k")).id == dead.id
    assert [job.id for job in await claim(backend)] == [dead.id]

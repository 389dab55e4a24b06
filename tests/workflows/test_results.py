"""Results flow: a job reads its parents' outcomes, or has their results as an argument."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

import queuekit
from queuekit import (
    JobStatus,
    OnFailure,
    ParentOutcome,
    ParentResults,
    Tasks,
    Worker,
    chain,
    chord,
    current_job,
    new_job,
)
from queuekit.retry import Discard

tasks = Tasks()
seen: dict[str, list[ParentOutcome]] = {}


@tasks.task()
async def number(value: int) -> int:
    return value


@tasks.task(max_attempts=1)
async def broken(value: int) -> int:
    raise Discard(f"no {value}")


@tasks.task()
async def total(counts: ParentResults[int] = (), plus: int = 0) -> int:
    return sum(counts) + plus


@tasks.task()
async def look() -> int:
    outcomes = await current_job().parents()
    seen[current_job().job.id] = outcomes
    return len(outcomes)


@dataclass
class Point:
    x: int
    y: int


@tasks.task()
async def point(x: int) -> Point:
    return Point(x, -x)


@tasks.task()
async def furthest(points: ParentResults[Point] = ()) -> int:
    return max(abs(p.x) + abs(p.y) for p in points)


@tasks.task()
async def big(size: int) -> str:
    return "x" * size


async def drain(queue: queuekit.Queue) -> None:
    await Worker(queue, tasks, concurrency=4).run_until_empty()


async def test_a_chain_passes_each_result_on(queue: queuekit.Queue) -> None:
    flow = chain(number.step(2), total.step(plus=3), total.step(plus=10))
    jobs = await queue.enqueue_many(flow)
    await drain(queue)
    assert await total.result(queue, jobs[-1], timeout=0) == 15


async def test_a_chord_gets_all_results_in_the_headers_order(queue: queuekit.Queue) -> None:
    header = [number.step(n) for n in (5, 1, 3)]
    flow = chord(header, look.step())
    jobs = await queue.enqueue_many(flow)
    await drain(queue)
    outcomes = seen[jobs[-1].id]
    assert [(o.job_id, o.type, o.status, o.result, o.error) for o in outcomes] == [
        (job.id, "number", JobStatus.COMPLETED, value, None)
        for job, value in zip(header, (5, 1, 3), strict=True)
    ]
    summed = await queue.enqueue_many(chord([number.step(n) for n in (5, 1, 3)], total.step()))
    await drain(queue)
    assert await queue.result(summed[-1].id, timeout=0) == 9


async def test_typed_results_come_back_typed(queue: queuekit.Queue) -> None:
    jobs = await queue.enqueue_many(chord([point.step(1), point.step(4)], furthest.step()))
    await drain(queue)
    assert await queue.result(jobs[-1].id, timeout=0) == 8


async def test_failed_parents_by_policy(queue: queuekit.Queue) -> None:
    run = await queue.enqueue_many(
        chord([number.step(1), broken.step(2)], look.step(), on_failure=OnFailure.RUN)
    )
    ignore = await queue.enqueue_many(
        chord([number.step(1), broken.step(2)], look.step(), on_failure=OnFailure.IGNORE)
    )
    summed = await queue.enqueue_many(
        chord([number.step(4), broken.step(2)], total.step(), on_failure=OnFailure.RUN)
    )
    cancel = await queue.enqueue_many(chord([number.step(1), broken.step(2)], look.step()))
    await drain(queue)
    ran = seen[run[-1].id]
    assert [(o.status, o.result, o.error) for o in ran] == [
        (JobStatus.COMPLETED, 1, None),
        (JobStatus.DEAD, None, "Discard: no 2"),
    ]
    assert [o.job_id for o in seen[ignore[-1].id]] == [ignore[0].id]
    # ParentResults holds the results of the parents that completed.
    assert await queue.result(summed[-1].id, timeout=0) == 4
    assert cancel[-1].id not in seen
    assert (await queue.get_job(cancel[-1].id)).status == JobStatus.CANCELLED


async def test_a_job_without_parents_sees_none(queue: queuekit.Queue) -> None:
    alone = await queue.enqueue("look")
    summed = await total.enqueue(queue, (1, 2))
    await drain(queue)
    assert seen[alone.id] == []
    assert await queue.result(summed.id, timeout=0) == 3  # given, so not filled


async def test_results_beyond_the_bound_fail_the_job_clearly(backend: queuekit.Backend) -> None:
    queue = queuekit.Queue(backend, max_payload_bytes=1000)
    jobs = await queue.enqueue_many(chord([big.step(600), big.step(600)], total.step()))
    await drain(queue)
    dead = await queue.get_job(jobs[-1].id)
    assert dead.status == JobStatus.DEAD
    assert dead.attempts == 1  # a retry would meet the same results
    assert dead.last_error is not None
    assert "results" in dead.last_error and "over the limit of 1000" in dead.last_error


async def test_parents_outside_a_worker_need_a_queue() -> None:
    context = queuekit.JobContext(job=_job(), state={}, worker_id="w")
    with pytest.raises(queuekit.InvalidOptionError):
        await context.parents()


def _job() -> queuekit.Job:
    now = datetime.now(UTC)
    request = new_job("look")
    return queuekit.Job(request.id, "default", "look", None, 10, JobStatus.RUNNING, 1, 3, now, now)


async def test_a_deleted_parent_and_a_cancelled_one(queue: queuekit.Queue) -> None:
    first = await number.enqueue(queue, 1)
    held = await queue.enqueue("manual", queue="elsewhere")  # no worker serves it
    child = await queue.enqueue(
        "look", after=[first, queuekit.Parent(held.id, OnFailure.RUN)], workflow_id="gone"
    )
    await drain(queue)
    assert await queue.delete_job(first.id)  # finished: deleting it changes nothing
    assert (await queue.get_job(child.id)).status == JobStatus.WAITING
    await queue.cancel(held.id)
    await drain(queue)
    outcomes = seen[child.id]
    assert [(o.job_id, o.type, o.status, o.error) for o in outcomes] == [
        (first.id, None, None, "deleted"),
        (held.id, "manual", JobStatus.CANCELLED, None),
    ]

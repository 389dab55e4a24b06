"""Conformance: enqueue fills defaults, delays, bulk enqueue and unique keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio

import queuekit
from queuekit import Backend, JobStatus, Limits, Priority, Queue

from ..setups import BackendSetup
from .helpers import claim, claim_one, claim_when_due


async def test_enqueue_returns_the_stored_job_with_defaults(queue: Queue) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    job = await queue.enqueue("send_email", {"to": "a@example.com"})
    assert job.status == JobStatus.PENDING
    assert (job.queue, job.type, job.payload) == ("default", "send_email", {"to": "a@example.com"})
    assert (job.priority, job.attempts, job.max_attempts) == (Priority.NORMAL, 0, 3)
    assert job.created_at.tzinfo is not None and job.created_at > before
    assert job.scheduled_at == job.created_at
    assert job.started_at is None and job.finished_at is None and job.lease_expires_at is None
    assert job.last_error is None and job.result is None
    assert await queue.get_job(job.id) == job


async def test_enqueue_returns_each_job_as_it_is_read_back(queue: Queue) -> None:
    """Every option an enqueue stores, one by one and in bulk, returned as `get_job` reads
    it (a backend may build the reply from the request and the columns it decided)."""
    parent = await queue.enqueue("t", (1, "tuple"), delay=60)

    def requests() -> list[queuekit.NewJob]:
        return [
            queuekit.new_job("t", {"n": [1.5, None, "✓"]}, priority=Priority.HIGH, max_attempts=7),
            queuekit.new_job("t", run_at=datetime.now(UTC) + timedelta(hours=1), queue="other"),
            queuekit.new_job("t", headers={"trace": "x"}, limit_key="k", expires_in=600),
            queuekit.new_job("t", expires_at=datetime.now(UTC) + timedelta(days=1)),
            queuekit.new_job("t", after=[parent]),
        ]

    one_by_one = [(await queue.enqueue_many([request]))[0] for request in requests()]
    in_bulk = await queue.enqueue_many(requests())
    for stored in (one_by_one, in_bulk):
        assert [job.status for job in stored] == [JobStatus.PENDING] * 4 + [JobStatus.WAITING]
    assert parent.payload == [1, "tuple"]
    for job in [parent, *one_by_one, *in_bulk]:
        assert await queue.get_job(job.id) == job


async def test_ids_are_unique_and_time_ordered(queue: Queue) -> None:
    ids = [(await queue.enqueue("t")).id for _ in range(50)]
    assert len(set(ids)) == 50
    assert ids == sorted(ids)


async def test_every_json_payload_round_trips(queue: Queue) -> None:
    for payload in [
        None,
        True,
        0,
        -1.5,
        "héllo ✓",
        [],
        [1, [2, {"a": None}]],
        {"nested": {"x": [1]}},
    ]:
        job = await queue.enqueue("t", payload)
        assert (await queue.get_job(job.id)).payload == payload


async def test_given_id_is_kept(queue: Queue) -> None:
    job = await queue.enqueue("t", id="order-42")
    assert job.id == "order-42"
    assert (await queue.get_job("order-42")).type == "t"


async def test_delayed_job_is_not_claimed_early(queue: Queue, backend: Backend) -> None:
    delayed = await queue.enqueue("t", delay=timedelta(seconds=0.4))
    assert delayed.scheduled_at >= delayed.created_at + timedelta(seconds=0.39)
    assert (await claim_when_due(backend)).id == delayed.id


async def test_run_at_in_the_future_waits(queue: Queue, backend: Backend) -> None:
    run_at = datetime.now(UTC) + timedelta(hours=1)
    job = await queue.enqueue("t", run_at=run_at)
    assert abs((job.scheduled_at - run_at).total_seconds()) < 0.001
    assert await claim(backend) == []


async def test_enqueue_many_stores_all_in_order(queue: Queue, backend: Backend) -> None:
    jobs = await queue.enqueue_many(
        queuekit.new_job("bulk", {"n": n}, queue="bulk") for n in range(100)
    )
    assert [job.payload["n"] for job in jobs] == list(range(100))
    claimed = await claim(backend, 100, queue="bulk")
    assert [job.payload["n"] for job in claimed] == list(range(100))


async def test_a_large_bulk_enqueue_returns_each_job_as_it_is_read_back(
    queue: Queue, backend: Backend
) -> None:
    """Hundreds of jobs in one call (which a backend may store another way: PostgreSQL by
    COPY), with every option but keys and parents: each comes back as `get_job` reads it, and
    is counted and claimed as one enqueued alone would be."""
    await queue.set_limits("other", Limits(per_key=1))
    now = datetime.now(UTC)
    shapes: list[Callable[[int], queuekit.NewJob]] = [
        lambda n: queuekit.new_job("t", {"n": n, "text": "✓ é"}),
        lambda n: queuekit.new_job("t", (n, None), queue="other", limit_key=f"k{n // 6 % 3}"),
        lambda n: queuekit.new_job("t", n, run_at=now + timedelta(hours=1), max_attempts=7),
        lambda n: queuekit.new_job("t", n, delay=timedelta(hours=1), expires_in=7200),
        lambda n: queuekit.new_job("t", n, headers={"trace": f"{n}"}, priority=Priority.HIGH),
        lambda n: queuekit.new_job(
            "t", n, expires_at=now + timedelta(days=1), workflow_id="w", batch_id="b"
        ),
    ]
    jobs = await queue.enqueue_many(shapes[n % len(shapes)](n) for n in range(600))
    assert {job.status for job in jobs} == {JobStatus.PENDING}
    for job in jobs:
        assert await queue.get_job(job.id) == job
    stats = await queue.stats()
    assert (stats.pending, stats.scheduled) == (500, 200)
    due = await claim(backend, 600)
    assert sorted(job.id for job in due) == sorted(
        job.id for n, job in enumerate(jobs) if job.queue == "default" and n % 6 not in (2, 3)
    )
    # One job per key: each key the call brought was made ready to claim from.
    claimed = await claim(backend, 50, queue="other")
    assert sorted(job.limit_key or "" for job in claimed) == ["k0", "k1", "k2"]


async def test_unique_key_returns_the_live_job(queue: Queue, backend: Backend) -> None:
    first = await queue.enqueue("welcome", {"user": 42}, unique_key="welcome:42")
    again = await queue.enqueue("welcome", {"user": 42}, unique_key="welcome:42")
    assert again.id == first.id
    other_queue = await queue.enqueue("welcome", unique_key="welcome:42", queue="other")
    assert other_queue.id != first.id
    running = await claim_one(backend)
    assert (await queue.enqueue("welcome", unique_key="welcome:42")).id == first.id
    assert await backend.complete(running.attempt)
    fresh = await queue.enqueue("welcome", unique_key="welcome:42")
    assert fresh.id != first.id and fresh.status == JobStatus.PENDING


async def test_unique_keys_within_one_bulk_enqueue(queue: Queue) -> None:
    jobs = await queue.enqueue_many(
        [queuekit.new_job("t", {"n": n}, unique_key=f"k{n % 3}") for n in range(9)]
    )
    assert len({job.id for job in jobs}) == 3
    assert [job.payload["n"] for job in jobs] == [0, 1, 2] * 3
    page = await queue.list_jobs()
    assert len(page.jobs) == 3


async def _enqueue_or_refuse(
    client: Backend, request: queuekit.NewJob, outcomes: list[str]
) -> None:
    try:
        outcomes.append((await client.enqueue(request)).id)
    except queuekit.InvalidOptionError:
        outcomes.append("refused")


async def test_racing_enqueues_of_one_id_keep_the_job_findable(
    queue: Queue, backend: Backend, backend_setup: BackendSetup
) -> None:
    other = backend_setup.make()
    await other.open()
    try:
        for n in range(30):
            job_id = f"slot-{n}"
            outcomes: list[str] = []
            async with anyio.create_task_group() as group:
                for client in (backend, other):
                    request = queuekit.new_job("t", id=job_id, unique_key=job_id)
                    group.start_soon(_enqueue_or_refuse, client, request, outcomes)
            assert job_id in outcomes
            assert (await queue.get_job(job_id)).id == job_id
        assert len((await queue.list_jobs(limit=100)).jobs) == 30
    finally:
        await other.close()

"""Conformance: queue limits (concurrency, per key, rates, ordered keys, holds) in every claim."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import anyio
import pytest

import queuekit
from queuekit import Backend, Job, JobStatus, Limits, Queue
from queuekit.backends.flow import window_start
from queuekit.errors import InvalidOptionError
from queuekit.limits import MAX_PERIOD_SECONDS
from queuekit.validation import MAX_UNIQUE_KEY_LENGTH

from ..setups import BackendSetup
from ..waiting import eventually
from .helpers import claim

YEAR = MAX_PERIOD_SECONDS
"""A rate window so long that no test run crosses into the next one."""


async def enqueue_keyed(queue: Queue, keys: Sequence[str | None], name: str = "default") -> None:
    await queue.enqueue_many(
        queuekit.new_job("t", {"n": n}, queue=name, limit_key=key) for n, key in enumerate(keys)
    )


def keys_of(jobs: Sequence[Job]) -> Counter[str | None]:
    return Counter(job.limit_key for job in jobs)


async def finish(backend: Backend, jobs: Sequence[Job]) -> None:
    for job in jobs:
        assert await backend.complete(job.attempt) == JobStatus.COMPLETED


async def test_limits_are_stored_changed_and_removed(queue: Queue, backend: Backend) -> None:
    limits = Limits(concurrency=3, per_key=1, rate=10, key_rate=2, period=1.5, ordered=True)
    await queue.set_limits("mail", limits)
    await queue.set_limits("sms", Limits(concurrency=1))
    assert await queue.limits() == {"mail": limits, "sms": Limits(concurrency=1)}
    await queue.set_limits("sms", Limits(rate=5))
    await queue.set_limits("mail", None)
    assert await queue.limits() == {"sms": Limits(rate=5)}
    assert Limits.from_json(limits.to_json()) == limits


@pytest.mark.parametrize(
    "bad",
    [
        {"concurrency": 0},
        {"per_key": -1},
        {"rate": 1.5},
        {"key_rate": True},
        {"period": 0},
        {"period": float("inf")},
        {"ordered": "yes"},
    ],
)
async def test_bad_limits_are_refused_and_nothing_changes(
    queue: Queue, bad: dict[str, object]
) -> None:
    await queue.set_limits("mail", Limits(concurrency=2))
    with pytest.raises(InvalidOptionError):
        await queue.set_limits("mail", Limits(**bad))  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError):
        Limits.from_dict({"concurency": 2})
    assert await queue.limits() == {"mail": Limits(concurrency=2)}


async def test_a_bad_limit_key_is_refused(queue: Queue) -> None:
    for bad in ("", "x" * 1000, "a\x00b"):
        with pytest.raises(InvalidOptionError):
            await queue.enqueue("t", limit_key=bad)
    assert await queue.list_queues() == []


async def test_the_limit_key_round_trips(queue: Queue) -> None:
    job = await queue.enqueue("t", limit_key="tenant-é 42")
    assert job.limit_key == "tenant-é 42"
    assert (await queue.get_job(job.id)).limit_key == "tenant-é 42"
    assert (await queue.enqueue("t")).limit_key is None
    longest = "k" * MAX_UNIQUE_KEY_LENGTH
    assert (
        await queue.get_job((await queue.enqueue("t", limit_key=longest)).id)
    ).limit_key == longest


async def test_concurrency_counts_running_jobs_of_the_queue(queue: Queue, backend: Backend) -> None:
    await queue.set_limits("default", Limits(concurrency=3))
    await enqueue_keyed(queue, [None] * 10)
    first = await claim(backend, 10)
    assert len(first) == 3
    assert await claim(backend, 10) == []
    await finish(backend, first[:2])
    second = await claim(backend, 10)
    assert len(second) == 2
    usage = await queue.limit_usage("default")
    assert usage.running == 3 and usage.limits == Limits(concurrency=3)
    await queue.set_limits("default", Limits(concurrency=5))  # takes effect at once
    assert len(await claim(backend, 10)) == 2
    await queue.set_limits("default", None)
    assert len(await claim(backend, 10)) == 3


async def test_other_queues_are_not_limited(queue: Queue, backend: Backend) -> None:
    await queue.set_limits("slow", Limits(concurrency=1))
    await enqueue_keyed(queue, [None] * 3, "slow")
    await enqueue_keyed(queue, [None] * 3, "fast")
    claimed = await backend.claim({"slow": 3, "fast": 3}, limit=6, lease=30, worker_id="w")
    assert Counter(job.queue for job in claimed) == {"slow": 1, "fast": 3}


async def test_per_key_limits_leave_keyless_jobs_alone(queue: Queue, backend: Backend) -> None:
    await queue.set_limits("default", Limits(per_key=2))
    await enqueue_keyed(queue, ["a"] * 5 + ["b"] * 5 + [None] * 3)
    claimed = await claim(backend, 20)
    assert keys_of(claimed) == {"a": 2, "b": 2, None: 3}
    assert keys_of(await claim(backend, 20)) == {}
    await finish(backend, [job for job in claimed if job.limit_key == "a"][:1])
    assert keys_of(await claim(backend, 20)) == {"a": 1}
    usage = await queue.limit_usage("default")
    assert usage.running_by_key == {"a": 2, "b": 2}


async def test_a_slot_comes_free_when_the_job_stops_running(queue: Queue, backend: Backend) -> None:
    """Fail (retry), snooze, cancel and an expired lease each give the slot back."""
    await queue.set_limits("default", Limits(concurrency=1))
    await enqueue_keyed(queue, [None] * 5)
    (job,) = await claim(backend, 5)
    assert await backend.fail(job.attempt, "boom", retry_in=3600) == JobStatus.FAILED
    (job,) = await claim(backend, 5)
    assert await backend.snooze(job.attempt, 3600) == JobStatus.PENDING
    (job,) = await claim(backend, 5)
    cancelled = await queue.cancel(job.id)
    assert cancelled.status == JobStatus.CANCELLED
    (job,) = await claim(backend, 5, lease=0.05)
    assert await claim(backend, 5) == []

    async def rescued() -> bool:
        return (await backend.rescue()).total == 1

    await eventually(rescued, "the expired lease was rescued")
    assert len(await claim(backend, 5)) == 1
    # The stale attempt is fenced out, and holds no slot.
    assert await backend.complete(job.attempt) is None
    assert await claim(backend, 5) == []


async def test_one_busy_key_does_not_starve_the_others(queue: Queue, backend: Backend) -> None:
    """One key with 10,000 jobs enqueued first, 99 keys with 10 each: keys take turns."""
    keys = ["hot"] * 10_000 + [f"k{n}" for n in range(99) for _ in range(10)]
    for start in range(0, len(keys), 2_000):
        await enqueue_keyed(queue, keys[start : start + 2_000])
    await queue.set_limits("default", Limits(concurrency=10))
    served: Counter[str | None] = Counter()
    for _ in range(99):
        claimed = await claim(backend, 10)
        assert len(claimed) == 10
        served.update(keys_of(claimed))
        await finish(backend, claimed)
    # 990 starts among 100 keys: a fair share is 10 each.
    assert served["hot"] <= 20, served["hot"]
    assert sum(count >= 8 for key, count in served.items() if key != "hot") >= 95, served


async def test_a_rate_limits_starts_per_window(queue: Queue, backend: Backend) -> None:
    await queue.set_limits("default", Limits(rate=5, key_rate=2, period=YEAR))
    await enqueue_keyed(queue, ["a"] * 4 + ["b"] * 4 + [None] * 10)
    first = await claim(backend, 20)
    assert len(first) == 5 and keys_of(first)["a"] <= 2 and keys_of(first)["b"] <= 2
    await finish(backend, first)
    assert await claim(backend, 20) == []  # finishing frees no start of this window
    usage = await queue.limit_usage("default")
    assert usage.started_in_window == 5 and usage.window_ends_at is not None


async def test_a_rate_counts_the_starts_made_while_it_is_set(
    queue: Queue, backend: Backend
) -> None:
    await queue.set_limits("default", Limits(per_key=5, period=YEAR))
    await enqueue_keyed(queue, ["a"] * 6 + [None] * 6)
    first = await claim(backend, 4)
    assert len(first) == 4
    await queue.set_limits("default", Limits(rate=3, key_rate=1, period=YEAR))
    second = await claim(backend, 8)
    assert len(second) == 3 and keys_of(second)["a"] <= 1
    assert (await queue.limit_usage("default")).started_in_window == 3
    assert await claim(backend, 8) == []


async def test_a_short_rate_window_is_never_exceeded(queue: Queue, backend: Backend) -> None:
    """Starts grouped by the window of their (backend) start time: never above the rate."""
    limits = Limits(rate=3, period=0.2)
    await queue.set_limits("default", limits)
    await enqueue_keyed(queue, [None] * 15)
    starts: list[datetime] = []

    async def all_started() -> bool:
        claimed = await claim(backend, 15)
        starts.extend(job.started_at for job in claimed if job.started_at is not None)
        await finish(backend, claimed)
        return len(starts) == 15

    await eventually(all_started, "all 15 jobs started")
    # Grouped as the rule groups them (a start on a boundary must fall on the same side).
    windows = Counter(window_start(limits, start.timestamp()) for start in starts)
    assert max(windows.values()) <= 3, windows


async def test_ordered_keys_run_one_at_a_time_in_enqueue_order(
    queue: Queue, backend: Backend
) -> None:
    await queue.set_limits("default", Limits(ordered=True))
    a1 = await queue.enqueue("t", limit_key="a", priority=0)
    a2 = await queue.enqueue("t", limit_key="a", priority=30)  # priority cannot jump the line
    b1 = await queue.enqueue("t", limit_key="b", max_attempts=2)
    b2 = await queue.enqueue("t", limit_key="b")
    loose = await queue.enqueue("t")
    claimed = await claim(backend, 10)
    assert {job.id for job in claimed} == {a1.id, b1.id, loose.id}
    assert await claim(backend, 10) == []
    by_id = {job.id: job for job in claimed}
    await finish(backend, [by_id[a1.id]])
    assert [job.id for job in await claim(backend, 10)] == [a2.id]
    # b1 fails with a retry: b2 waits behind it, then runs once b1 is dead.
    assert await backend.fail(by_id[b1.id].attempt, "boom", retry_in=0) == JobStatus.FAILED
    (retried,) = await claim(backend, 10)
    assert retried.id == b1.id
    assert await backend.fail(retried.attempt, "boom", retry_in=None) == JobStatus.DEAD
    assert [job.id for job in await claim(backend, 10)] == [b2.id]


async def test_a_hold_stops_a_key_or_the_queue(queue: Queue, backend: Backend) -> None:
    await queue.set_limits("default", Limits(per_key=10))
    await enqueue_keyed(queue, ["a"] * 2 + ["b"] * 2 + [None] * 2)
    await queue.hold("default", 3600, key="a")
    await queue.hold("default", 1, key="a")  # a shorter hold does not shorten it
    assert keys_of(await claim(backend, 10)) == {"b": 2, None: 2}
    usage = await queue.limit_usage("default")
    assert set(usage.held_keys) == {"a"} and usage.held_until is None
    await enqueue_keyed(queue, ["c"])
    await queue.hold("default", 3600)
    assert await claim(backend, 10) == []
    assert (await queue.limit_usage("default")).held_until is not None


async def test_a_hold_applies_to_a_queue_without_limits(queue: Queue, backend: Backend) -> None:
    await enqueue_keyed(queue, ["a", "b"])
    await queue.hold("default", 3600, key="a")
    assert keys_of(await claim(backend, 10)) == {"b": 1}
    assert await queue.limits() == {}


@contextlib.asynccontextmanager
async def clients(setup: BackendSetup, count: int) -> AsyncIterator[list[Backend]]:
    opened = [setup.make() for _ in range(count)]
    try:
        for client in opened:
            if setup.url is not None:  # (memory's `make` gives the test's own backend)
                await client.open()
        yield opened
    finally:
        for client in opened:
            if setup.url is not None:
                await client.close()


async def test_concurrent_claimers_never_exceed_the_limits(
    queue: Queue, backend: Backend, backend_setup: BackendSetup
) -> None:
    """Twenty clients claim and finish at once; by the backend's own start and finish times,
    at no instant do more run than allowed, in the queue or per key."""
    await queue.set_limits("default", Limits(concurrency=4, per_key=2))
    await enqueue_keyed(queue, [f"k{n % 3}" for n in range(120)])
    async with clients(backend_setup, 20) as claimers:

        async def work(client: Backend) -> None:
            while True:
                claimed = await claim(client, 3)
                if not claimed:
                    if (await client.stats("default")).pending == 0:
                        return
                    await anyio.sleep(0.001)
                    continue
                await anyio.sleep(0.002)
                await finish(client, claimed)

        async with anyio.create_task_group() as group:
            for client in claimers:
                group.start_soon(work, client)
    done = (await queue.list_jobs(status=JobStatus.COMPLETED, limit=500)).jobs
    assert len(done) == 120
    events = sorted(
        [(job.started_at, 1, job.limit_key) for job in done]
        + [(job.finished_at, -1, job.limit_key) for job in done],
        key=lambda event: (event[0], event[1]),  # a finish before a start at the same instant
    )
    running: Counter[str | None] = Counter()
    for _, step, key in events:
        running[key] += step
        running["*"] += step
        assert running["*"] <= 4 and running[key] <= 2, running

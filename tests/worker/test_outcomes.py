"""The worker on every backend: each way an attempt can end reaches its documented state."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

import anyio
import pytest

import queuekit
from queuekit import (
    Discard,
    Fixed,
    JobFailedError,
    JobStatus,
    Outcome,
    Queue,
    Retry,
    Tasks,
    Worker,
    current_job,
)

from .options import FAST


async def test_completes_jobs_and_stores_results(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task()
    async def add(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b}

    async with Worker(queue, tasks, **FAST):
        job = await add.enqueue(queue, 2, b=3)
        assert await queue.result(job.id, timeout=10) == {"sum": 5}
        by_name = await queue.enqueue("add", {"a": 1, "b": 1})
        assert await queue.result(by_name.id, timeout=10) == {"sum": 2}
    done = await queue.get_job(job.id)
    assert done.status == JobStatus.COMPLETED and done.attempts == 1


async def test_synchronous_handlers_run_in_a_thread(queue: Queue) -> None:
    tasks = Tasks()
    threads: list[int] = []

    ticks = 0

    @tasks.task()
    def blocking() -> str:
        """Block this thread until the event loop has ticked ten times meanwhile."""
        threads.append(threading.get_ident())
        wanted, deadline = ticks + 10, time.monotonic() + 30
        while ticks < wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        return "slept" if ticks >= wanted else "the event loop was blocked"

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with Worker(queue, tasks, **FAST), anyio.create_task_group() as group:
        group.start_soon(ticker)
        job = await blocking.enqueue(queue)
        assert await queue.result(job.id, timeout=60) == "slept"
        group.cancel_scope.cancel()
    assert threads and threads[0] != threading.get_ident()


async def test_handler_sees_its_job_and_the_worker_state(queue: Queue) -> None:
    tasks = Tasks()
    seen: list[tuple[str, int, Any]] = []

    @tasks.task()
    async def inspect_me() -> None:
        context = current_job()
        seen.append((context.job.id, context.job.attempts, context.state["client"]))

    async def startup(state: dict[str, Any]) -> None:
        state["client"] = "shared-client"

    async with Worker(queue, tasks, on_startup=[startup], **FAST):
        job = await inspect_me.enqueue(queue)
        await queue.result(job.id, timeout=10)
    assert seen == [(job.id, 1, "shared-client")]


async def test_exception_retries_with_backoff_then_succeeds(queue: Queue) -> None:
    tasks = Tasks()
    started: list[float] = []

    @tasks.task(max_attempts=3, retry=Fixed(0.3))
    async def flaky() -> str:
        started.append(time.monotonic())
        if len(started) < 3:
            raise ValueError(f"boom {len(started)}")
        return "ok"

    async with Worker(queue, tasks, **FAST):
        job = await flaky.enqueue(queue)
        assert await queue.result(job.id, timeout=10) == "ok"
    gaps = [later - earlier for earlier, later in itertools.pairwise(started)]
    assert len(started) == 3
    assert all(gap >= 0.29 for gap in gaps), gaps
    done = await queue.get_job(job.id)
    assert done.attempts == 3 and done.last_error is not None
    assert done.last_error.startswith("ValueError: boom 2")
    assert "Traceback" in done.last_error


async def test_exhausted_attempts_go_dead_and_result_raises(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task(max_attempts=2, retry=Fixed(0))
    async def always_fails() -> None:
        raise RuntimeError("nope")

    async with Worker(queue, tasks, **FAST):
        job = await always_fails.enqueue(queue)
        with pytest.raises(JobFailedError) as raised:
            await queue.result(job.id, timeout=10)
    dead = raised.value.job
    assert dead.status == JobStatus.DEAD and dead.attempts == 2
    assert dead.last_error is not None and dead.last_error.startswith("RuntimeError: nope")


async def test_timeout_fails_the_attempt(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task(timeout=0.2, max_attempts=2, retry=Fixed(0))
    async def sleepy() -> None:
        await anyio.sleep(30)

    async with Worker(queue, tasks, **FAST):
        job = await sleepy.enqueue(queue)
        with pytest.raises(JobFailedError):
            await queue.result(job.id, timeout=10)
    dead = await queue.get_job(job.id)
    assert dead.attempts == 2
    assert dead.last_error is not None
    assert dead.last_error.startswith("TimeoutError: job exceeded its 0.2 s timeout")


async def test_retry_snoozes_without_counting(queue: Queue) -> None:
    tasks = Tasks()
    calls: list[int] = []

    @tasks.task(max_attempts=1)
    async def later() -> str:
        calls.append(current_job().job.attempts)
        if len(calls) < 3:
            raise Retry(after=0.05)
        return "done"

    async with Worker(queue, tasks, **FAST):
        job = await later.enqueue(queue)
        assert await queue.result(job.id, timeout=10) == "done"
    assert calls == [1, 1, 1]


async def test_retry_counting_the_attempt_uses_its_own_wait(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task(max_attempts=2)
    async def rate_limited() -> None:
        raise Retry(after=0.05, count_attempt=True)

    async with Worker(queue, tasks, **FAST):
        job = await rate_limited.enqueue(queue)
        with pytest.raises(JobFailedError):
            await queue.result(job.id, timeout=10)
    assert (await queue.get_job(job.id)).attempts == 2


async def test_discard_goes_straight_to_dead(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task(max_attempts=5)
    async def hopeless() -> None:
        raise Discard("the account was deleted")

    async with Worker(queue, tasks, **FAST):
        job = await hopeless.enqueue(queue)
        with pytest.raises(JobFailedError):
            await queue.result(job.id, timeout=10)
    dead = await queue.get_job(job.id)
    assert dead.attempts == 1 and dead.last_error == "Discard: the account was deleted"


async def test_unknown_type_goes_to_dead_without_spinning(queue: Queue) -> None:
    async with Worker(queue, Tasks(), **FAST):
        job = await queue.enqueue("nobody_handles_this", max_attempts=5)
        with pytest.raises(JobFailedError):
            await queue.result(job.id, timeout=10)
    dead = await queue.get_job(job.id)
    assert dead.attempts == 1
    assert dead.last_error == "UnknownTaskError: no handler registered for type nobody_handles_this"


async def test_unserialisable_result_fails_clearly(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task(max_attempts=3)
    async def returns_a_set() -> object:
        # A declared `set[int]` would be stored as a list (typed results, queuekit.typed).
        return {1, 2}

    async with Worker(queue, tasks, **FAST):
        job = await returns_a_set.enqueue(queue)
        with pytest.raises(JobFailedError):
            await queue.result(job.id, timeout=10)
    dead = await queue.get_job(job.id)
    assert dead.attempts == 1
    assert dead.last_error is not None and "result is not a JSON value" in dead.last_error


async def test_hooks_and_log_records(queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    tasks = Tasks()
    events: list[str] = []

    @tasks.task(max_attempts=1)
    async def fails() -> None:
        raise ValueError("x")

    @tasks.task()
    async def works() -> None:
        pass

    async def before(context: queuekit.JobContext) -> None:
        events.append(f"before {context.job.type}")

    async def after(context: queuekit.JobContext, report: queuekit.JobReport) -> None:
        events.append(f"after {context.job.type} {report.outcome}")

    async def shutdown(state: dict[str, Any]) -> None:
        events.append("shutdown")

    caplog.set_level(logging.WARNING, logger="queuekit.worker")
    async with Worker(
        queue, tasks, before_job=[before], after_job=[after], on_shutdown=[shutdown], **FAST
    ):
        first = await works.enqueue(queue)
        await queue.result(first.id, timeout=10)
        second = await fails.enqueue(queue)
        with pytest.raises(JobFailedError):
            await queue.result(second.id, timeout=10)
        with anyio.fail_after(5):
            while len(events) < 4:
                await anyio.sleep(0.01)
    assert events == [
        "before works",
        f"after works {Outcome.COMPLETED}",
        "before fails",
        f"after fails {Outcome.DEAD}",
        "shutdown",
    ]
    failure = next(r for r in caplog.records if "attempt failed" in r.getMessage())
    assert failure.__dict__["job_id"] == second.id
    assert (failure.__dict__["job_type"], failure.__dict__["queue"]) == ("fails", "default")
    assert failure.__dict__["attempt"] == 1


async def test_run_until_empty(queue: Queue) -> None:
    tasks = Tasks()
    done: list[int] = []

    @tasks.task()
    async def record(n: int) -> None:
        done.append(n)

    await queue.enqueue_many(queuekit.new_job("record", {"n": n}) for n in range(50))
    await queue.enqueue("record", {"n": -1}, delay=3600)
    ran = await Worker(queue, tasks, **FAST).run_until_empty()
    assert ran == 50 and sorted(done) == list(range(50))
    assert (await queue.stats()).scheduled == 1


async def test_result_without_a_timeout_waits_for_a_delayed_job(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task()
    async def answer() -> int:
        return 42

    async with Worker(queue, tasks, **FAST):
        job = await answer.with_options(delay=0.3).enqueue(queue)
        with anyio.fail_after(10):
            assert await queue.result(job.id) == 42

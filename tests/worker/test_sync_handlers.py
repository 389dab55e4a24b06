"""A plain (sync) handler never runs beside its own retry: Python cannot stop its thread, so the
worker keeps the lease until the thread returns, and shutdown says which threads it left."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import queuekit
from queuekit import Fixed, JobStatus, Outcome, Queue, Tasks, Worker, current_job

from .options import FAST

LEASE = 1.5
DEADLINE = 60


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(DEADLINE):
        while not condition():
            await anyio.sleep(0.01)


def logged(caplog: pytest.LogCaptureFixture, text: str) -> Callable[[], bool]:
    return lambda: any(text in record.getMessage() for record in caplog.records)


async def test_a_sync_handler_past_its_timeout_keeps_its_lease_until_its_thread_ends(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    release = threading.Event()
    events: list[str] = []
    reports: list[queuekit.JobReport] = []

    @tasks.task(timeout=0.2, max_attempts=2, retry=Fixed(0))
    def stubborn() -> str:
        attempt = current_job().job.attempts
        events.append(f"start {attempt}")
        if attempt == 1:
            release.wait(DEADLINE)  # far past its timeout, ignoring it
        events.append(f"end {attempt}")
        return "done"

    async def keep(context: queuekit.JobContext, report: queuekit.JobReport) -> None:
        reports.append(report)

    caplog.set_level(logging.WARNING, logger="queuekit.worker")
    async with Worker(queue, tasks, lease=LEASE, after_job=[keep], **FAST):
        job = await stubborn.enqueue(queue)
        await wait_until(logged(caplog, "its thread runs on"))
        first = await queue.get_job(job.id)
        assert first.lease_expires_at is not None
        # Hold the thread for several leases: the heartbeat renews the lease all along, and
        # neither the rescuer nor another attempt takes the job.
        with anyio.fail_after(DEADLINE):
            while True:
                now = await queue.get_job(job.id)
                assert (now.status, now.attempts) == (JobStatus.RUNNING, 1)
                assert now.lease_expires_at is not None
                if (now.lease_expires_at - first.lease_expires_at).total_seconds() > 2 * LEASE:
                    break
                await anyio.sleep(0.05)
        assert events == ["start 1"]
        release.set()
        assert await queue.result(job.id, timeout=DEADLINE) == "done"
    assert events == ["start 1", "end 1", "start 2", "end 2"]
    assert [report.outcome for report in reports] == [Outcome.FAILED, Outcome.COMPLETED]
    assert isinstance(reports[0].error, TimeoutError)
    # The worker's clock, not the backend's: compare with a margin, not the exact span above.
    assert reports[0].duration > LEASE
    done = await queue.get_job(job.id)
    assert done.attempts == 2


async def test_a_sync_handlers_timeout_counts_from_when_a_thread_takes_the_call(
    queue: Queue,
) -> None:
    """Waiting for a free thread is not the handler's time, as starting a process is not a
    process task's: a call that waits past its timeout for the only thread still runs."""
    tasks = Tasks()

    @tasks.task(timeout=0.2, max_attempts=1)
    def quick() -> str:
        return "done"

    threads = anyio.to_thread.current_default_thread_limiter()
    threads.total_tokens = 1  # this test's event loop's pool only
    release = threading.Event()
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, release.wait, DEADLINE)
            await wait_until(lambda: threads.borrowed_tokens == 1)
            async with Worker(queue, tasks, **FAST):
                job = await quick.enqueue(queue)
                await wait_until(lambda: threads.statistics().tasks_waiting == 1)
                await anyio.sleep(0.5)  # its timeout passes while it waits for the thread
                release.set()
                assert await queue.result(job.id, timeout=DEADLINE) == "done"
    finally:
        release.set()


async def test_the_timeout_is_recorded_once_the_thread_has_ended(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    release = threading.Event()

    @tasks.task(timeout=0.2, max_attempts=1)
    def overruns() -> str:
        release.wait(DEADLINE)
        return "too late"

    caplog.set_level(logging.WARNING, logger="queuekit.worker")
    async with Worker(queue, tasks, lease=LEASE, **FAST):
        job = await overruns.enqueue(queue)
        await wait_until(logged(caplog, "its thread runs on"))
        assert (await queue.get_job(job.id)).status == JobStatus.RUNNING
        release.set()
        with pytest.raises(queuekit.JobFailedError):
            await queue.result(job.id, timeout=DEADLINE)
    dead = await queue.get_job(job.id)
    assert dead.result is None and dead.last_error is not None
    assert dead.last_error.startswith("TimeoutError: job exceeded its 0.2 s timeout")


async def test_a_sync_handler_can_stop_itself_once_timed_out(queue: Queue) -> None:
    tasks = Tasks()
    checked = threading.Event()

    @tasks.task(timeout=0.2, max_attempts=1)
    def cooperative() -> None:
        while True:  # a long loop that checks between steps
            try:
                anyio.from_thread.check_cancelled()
            except BaseException:
                checked.set()
                raise
            threading.Event().wait(0.01)

    async with Worker(queue, tasks, lease=LEASE, **FAST):
        job = await cooperative.enqueue(queue)
        with pytest.raises(queuekit.JobFailedError):
            await queue.result(job.id, timeout=DEADLINE)
    assert checked.is_set()
    dead = await queue.get_job(job.id)
    assert dead.last_error is not None and dead.last_error.startswith("TimeoutError")


async def test_shutdown_names_the_threads_it_leaves_and_hands_none_back(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    release = threading.Event()
    started = threading.Event()
    reports: list[Any] = []

    @tasks.task()
    def endless() -> None:
        started.set()
        release.wait(DEADLINE)

    async def keep(context: queuekit.JobContext, report: queuekit.JobReport) -> None:
        reports.append(report.outcome)

    caplog.set_level(logging.WARNING, logger="queuekit.worker")
    try:
        async with Worker(queue, tasks, shutdown_timeout=0.2, after_job=[keep], **FAST):
            job = await endless.enqueue(queue)
            await wait_until(started.is_set)
        record = next(r for r in caplog.records if "Python cannot stop" in r.getMessage())
        assert record.levelno == logging.ERROR and job.id in record.getMessage()
        assert reports == [Outcome.ABANDONED]
        left = await queue.get_job(job.id)
        assert (left.status, left.attempts) == (JobStatus.RUNNING, 1)  # not handed back
    finally:
        release.set()

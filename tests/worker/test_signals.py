"""Honest signals: a refused outcome and a blocked event loop are logged, with numbers."""

from __future__ import annotations

import logging
import time

import anyio
import pytest

from queuekit import JobStatus, Queue, Retry, Tasks, Worker, current_job

from .options import FAST

DEADLINE = 60


async def wait_for_record(caplog: pytest.LogCaptureFixture, text: str) -> logging.LogRecord:
    with anyio.fail_after(DEADLINE):
        while True:
            for record in caplog.records:
                if text in record.getMessage():
                    return record
            await anyio.sleep(0.01)


@pytest.mark.parametrize("ending", ["completion", "failure", "snooze"])
async def test_a_refused_outcome_is_logged_with_how_long_the_attempt_ran(
    queue: Queue, caplog: pytest.LogCaptureFixture, ending: str
) -> None:
    tasks = Tasks()

    @tasks.task(max_attempts=3)
    async def cancelled_meanwhile() -> str:
        # Cancelled while it runs, it ends before the next heartbeat (a third of the lease,
        # 20 s away) could stop it: its own outcome call finds the lease gone.
        await queue.cancel(current_job().job.id)
        if ending == "failure":
            raise ValueError("too late")
        if ending == "snooze":
            raise Retry(after=60)
        return "too late"

    caplog.set_level(logging.WARNING, logger="queuekit.worker")
    async with Worker(queue, tasks, lease=60, **FAST):
        job = await cancelled_meanwhile.enqueue(queue)
        record = await wait_for_record(caplog, f"lease lost: the {ending} was refused")
    assert record.levelno == logging.WARNING
    assert record.__dict__["job_id"] == job.id
    assert "after the attempt ran" in record.getMessage()
    assert (await queue.get_job(job.id)).status == JobStatus.CANCELLED


async def test_the_watchdog_warns_when_the_event_loop_is_blocked(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    lease = 1.2

    @tasks.task(max_attempts=1)
    async def blocks_the_loop() -> None:
        time.sleep(lease)  # noqa: ASYNC251 - the mistake the watchdog is there to reveal

    caplog.set_level(logging.WARNING, logger="queuekit.worker")
    async with Worker(queue, tasks, lease=lease, **FAST):
        await blocks_the_loop.enqueue(queue)
        record = await wait_for_record(caplog, "the event loop was blocked for")
    blocked = float(record.getMessage().split("blocked for ")[1].split(" s")[0])
    assert blocked > lease / 3

"""The worker on every backend: a job that expired unstarted is never run, and its waiters learn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queuekit import JobFailedError, JobStatus, Queue, Tasks, Worker
from queuekit.backend import EXPIRED

from ..waiting import eventually
from .options import FAST


async def test_expired_jobs_never_run_and_the_expirer_cancels_them(queue: Queue) -> None:
    tasks = Tasks()
    ran: list[str] = []

    @tasks.task()
    async def work(name: str) -> str:
        ran.append(name)
        return name

    past = datetime.now(UTC) - timedelta(hours=1)
    expired = await work.with_options(expires_at=past).enqueue(queue, "expired")
    # Due only after its expiry: no claim ever looks at it, the worker's expirer ends it.
    delayed = await work.with_options(delay=3600, expires_at=past).enqueue(queue, "delayed")
    live = await work.with_options(expires_in=3600).enqueue(queue, "live")
    async with Worker(queue, tasks, **FAST):
        assert await queue.result(live.id, timeout=30) == "live"
        for job in (expired, delayed):
            with pytest.raises(JobFailedError) as raised:
                await queue.result(job.id, timeout=30)
            assert raised.value.job.status == JobStatus.CANCELLED
            assert raised.value.job.last_error == EXPIRED

        async def swept() -> bool:
            return (await queue.get_job(delayed.id)).status == JobStatus.CANCELLED

        await eventually(swept, "the expirer cancelled the delayed job")
    assert ran == ["live"]

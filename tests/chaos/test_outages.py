"""An outcome is not thrown away on a blip: a job that completes while its store is unreachable
(a cut TCP connection, or a SQLite write lock held past the busy timeout) ends completed,
once, when the store is back; and the worker's claims back off exponentially meanwhile."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import pytest

import queuekit
from queuekit import JobStatus, Tasks, Worker
from queuekit.backends.sqlite import backend as sqlite_backend

from ..setups import BackendSetup
from .faults import Outage, SQLiteLock, TcpProxy

DEADLINE = 60
LEASE = 10.0
"""Long enough to outlast each outage here: the job keeps its lease throughout."""
POLL = 0.05


@pytest.fixture
async def outage(
    durable_setup: BackendSetup, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Outage]:
    assert durable_setup.url is not None
    if durable_setup.name == "sqlite":
        # A write waits out the busy timeout before it fails: a short one keeps the test short.
        monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_MS", 300)
        lock = SQLiteLock(durable_setup.url)
        try:
            yield lock
        finally:
            await lock.restore()
    else:
        async with TcpProxy(durable_setup.url) as proxy:
            yield proxy


async def wait_for_records(
    caplog: pytest.LogCaptureFixture, text: str, count: int = 1, after: int = 0
) -> list[logging.LogRecord]:
    """The first `count` records holding `text` among those logged after the first `after`."""
    with anyio.fail_after(DEADLINE):
        while True:
            found = [r for r in caplog.records[after:] if text in r.getMessage()]
            if len(found) >= count:
                return found[:count]
            await anyio.sleep(0.01)


def delay_of(record: logging.LogRecord) -> float:
    return float(record.getMessage().split("retrying in ")[1].split(" s")[0])


async def test_a_job_completed_during_an_outage_ends_completed_once(
    durable_setup: BackendSetup, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    runs = 0
    started = anyio.Event()
    may_finish = anyio.Event()

    @tasks.task(max_attempts=3)
    async def finish_in_outage() -> str:
        nonlocal runs
        runs += 1
        started.set()
        await may_finish.wait()
        return "kept"

    caplog.set_level(logging.WARNING, logger="queuekit.worker")
    async with queuekit.connect(durable_setup.make()) as observer:  # never cut off
        queue = queuekit.connect(outage.url)
        async with queue, Worker(queue, tasks, lease=LEASE, poll_interval=POLL):
            job = await finish_in_outage.enqueue(queue)
            with anyio.fail_after(DEADLINE):
                await started.wait()
            await outage.cut()
            may_finish.set()
            await wait_for_records(caplog, "could not record the outcome, retrying in")
            await outage.restore()
            assert await observer.result(job.id, timeout=DEADLINE) == "kept"
        done = await observer.get_job(job.id)
    assert runs == 1
    assert (done.status, done.attempts, done.last_error) == (JobStatus.COMPLETED, 1, None)


async def test_claims_back_off_exponentially_while_the_store_is_unreachable(
    durable_setup: BackendSetup, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()

    @tasks.task()
    async def t() -> str:
        return "ok"

    caplog.set_level(logging.WARNING, logger="queuekit.worker")
    queue = queuekit.connect(outage.url)
    async with queue, Worker(queue, tasks, lease=LEASE, poll_interval=POLL):
        await outage.cut()
        failures = await wait_for_records(caplog, "failed, retrying in", count=4)
        delays = [delay_of(record) for record in failures]
        # Doubling with ±50 % jitter: the fourth wait is longer than the first can be.
        assert delays[0] <= 1.5 * POLL and delays[3] > 1.5 * POLL, delays
        await outage.restore()
        job = await t.enqueue(queue)  # claimed: a success resets the back-off
        assert await queue.result(job.id, timeout=DEADLINE) == "ok"
        seen = len(caplog.records)
        await outage.cut()
        (again,) = await wait_for_records(caplog, "failed, retrying in", after=seen)
        assert delay_of(again) <= 1.5 * POLL
        await outage.restore()

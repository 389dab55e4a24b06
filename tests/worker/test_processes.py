"""Workers in separate OS processes: SIGKILL mid-job loses nothing, SIGTERM drains and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

import queuekit
from queuekit import JobStatus, Queue, Worker

from ..setups import BackendSetup
from .process_worker import tasks

ROOT = Path(__file__).resolve().parents[2]


def start_worker(
    url: str, record: Path, *, lease: float, concurrency: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.worker.process_worker",
            url,
            str(record),
            str(lease),
            str(concurrency),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def events(record: Path) -> Counter[tuple[str, str]]:
    if not record.exists():
        return Counter()
    return Counter(tuple(line.split()) for line in record.read_text().splitlines())  # type: ignore[misc]


async def wait_for_starts(record: Path, count: int) -> None:
    with anyio.fail_after(30):
        while sum(n for (event, _), n in events(record).items() if event == "start") < count:
            await anyio.sleep(0.02)


@pytest.fixture
async def durable_queue(durable_setup: BackendSetup) -> AsyncIterator[Queue]:
    async with queuekit.connect(durable_setup.make()) as queue:
        yield queue


@pytest.mark.slow
async def test_sigkill_mid_job_loses_nothing(
    durable_setup: BackendSetup, durable_queue: Queue, tmp_path: Path
) -> None:
    assert durable_setup.url is not None
    total = 60
    record = tmp_path / "events.log"
    jobs = await durable_queue.enqueue_many(
        queuekit.new_job("sleepy", {"seconds": 0.3}) for _ in range(total)
    )
    concurrency = 10
    process = start_worker(durable_setup.url, record, lease=1.0, concurrency=concurrency)
    try:
        await wait_for_starts(record, 15)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    at_kill = events(record)
    started_before_kill = {job_id for (event, job_id) in at_kill if event == "start"}
    killed_mid_job = started_before_kill - {job_id for (event, job_id) in at_kill if event == "end"}
    assert killed_mid_job, "the kill should land while jobs run"

    state = {"record": str(record)}
    async with Worker(
        durable_queue, tasks, lease=1.0, rescue_interval=0.2, poll_interval=0.1, state=state
    ):
        with anyio.fail_after(60):
            while (await durable_queue.stats()).completed < total:
                await anyio.sleep(0.1)
    # This process runs the same tasks, recording into the same file.
    stats = await durable_queue.stats()
    assert stats.completed == total and stats.dead == 0 and stats.pending == 0
    seen = events(record)
    ran_twice = {job.id for job in jobs if seen[("start", job.id)] > 1}
    # A job whose handler ended but whose completion had not committed at the kill runs
    # again too: its lease expired. Nothing else may run twice, and the killed worker held at
    # most `concurrency` handlers and `concurrency` outcomes waiting for their write.
    assert killed_mid_job <= ran_twice <= started_before_kill
    assert len(ran_twice) <= 2 * concurrency
    attempts = {job.id: (await durable_queue.get_job(job.id)).attempts for job in jobs}
    retried = {job_id for job_id, count in attempts.items() if count == 2}
    assert set(attempts.values()) <= {1, 2}
    # Jobs claimed by the killed worker but not yet started count an attempt too.
    assert killed_mid_job <= retried and len(retried) <= 2 * concurrency


@pytest.mark.slow
async def test_sigterm_drains_in_flight_jobs_and_exits_zero(
    durable_setup: BackendSetup, durable_queue: Queue, tmp_path: Path
) -> None:
    assert durable_setup.url is not None
    total = 30
    record = tmp_path / "events.log"
    await durable_queue.enqueue_many(
        queuekit.new_job("sleepy", {"seconds": 0.5}) for _ in range(total)
    )
    process = start_worker(durable_setup.url, record, lease=5.0, concurrency=5)
    await wait_for_starts(record, 5)
    process.send_signal(signal.SIGTERM)
    with anyio.fail_after(30):
        while process.poll() is None:
            await anyio.sleep(0.05)
    assert process.returncode == 0
    seen = events(record)
    started = {job_id for (event, job_id) in seen if event == "start"}
    finished = {job_id for (event, job_id) in seen if event == "end"}
    assert started == finished, "every job running at SIGTERM finished"
    stats = await durable_queue.stats()
    assert stats.completed == len(started) and stats.running == 0
    assert stats.pending == total - len(started)


@pytest.mark.slow
async def test_second_sigterm_forces_the_exit(
    durable_setup: BackendSetup, durable_queue: Queue, tmp_path: Path
) -> None:
    assert durable_setup.url is not None
    record = tmp_path / "events.log"
    job = await durable_queue.enqueue("sleepy", {"seconds": 60})
    process = start_worker(durable_setup.url, record, lease=1.0, concurrency=1)
    await wait_for_starts(record, 1)
    process.send_signal(signal.SIGTERM)
    await anyio.sleep(0.3)
    assert process.poll() is None, "the first signal waits for the running job"
    process.send_signal(signal.SIGTERM)
    with anyio.fail_after(10):
        while process.poll() is None:
            await anyio.sleep(0.05)
    assert process.returncode == 0
    # Left running by the forced exit, the job is rescued once its lease expires.
    assert (await durable_queue.get_job(job.id)).status == JobStatus.RUNNING
    await anyio.sleep(1.2)
    assert (await durable_queue.backend.rescue()).total == 1
    assert (await durable_queue.get_job(job.id)).status == JobStatus.FAILED

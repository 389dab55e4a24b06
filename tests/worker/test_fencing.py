"""A stale worker process against cancel, replay and a new claim of its job: only the new
attempt's outcome counts, and the stale handler stops at its next heartbeat, or at once where
the cancel is pushed to it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

import queuekit
from queuekit import JobStatus, Queue

from ..setups import BackendSetup
from .fenced_worker import fenced_worker

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60


def start_stale_worker(url: str, folder: Path, lease: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.worker.fenced_worker", url, str(folder), "stale", str(lease)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def events(folder: Path) -> list[str]:
    log = folder / "events.log"
    return log.read_text().splitlines() if log.exists() else []


async def wait_for_event(folder: Path, event: str) -> None:
    with anyio.fail_after(DEADLINE):
        while event not in events(folder):
            await anyio.sleep(0.02)


async def wait_for_exit(process: subprocess.Popen[bytes]) -> int:
    with anyio.fail_after(DEADLINE):
        while process.poll() is None:
            await anyio.sleep(0.02)
    return process.returncode


async def replay_under_the_stale_worker(
    queue: Queue, job_id: str, folder: Path, stopped_by: str
) -> None:
    """Cancel and replay the job the stale worker runs, let the new worker claim it, and see
    the stale attempt stopped by its heartbeat or by a refused `complete`."""
    await queue.cancel(job_id)
    assert (await queue.replay(job_id)).attempts == 0
    await wait_for_event(folder, "start new")
    if stopped_by == "heartbeat":
        await wait_for_event(folder, "stopped stale")
        return
    (folder / "release-stale").touch()
    await wait_for_event(folder, "outcome stale lost")
    held = await queue.get_job(job_id)
    assert (held.status, held.worker_id, held.attempts) == (JobStatus.RUNNING, "new", 1)


@pytest.fixture
async def durable_queue(durable_setup: BackendSetup) -> AsyncIterator[Queue]:
    async with queuekit.connect(durable_setup.make()) as queue:
        yield queue


@pytest.mark.slow
@pytest.mark.parametrize("stopped_by", ["heartbeat", "refused complete"])
async def test_a_stale_worker_never_finishes_a_replayed_job(
    durable_setup: BackendSetup, durable_queue: Queue, tmp_path: Path, stopped_by: str
) -> None:
    """The stale worker's attempt and the new one have the same attempt number.

    With a short lease the stale worker heartbeats soon and learns it lost the job; with a
    lease far longer than the test it never heartbeats, so its handler returns and its
    `complete` is what the backend refuses; unless the backend pushes the cancel to the stale
    process (PostgreSQL and Redis do, SQLite only within a process), which stops it at once.
    """
    assert durable_setup.url is not None
    stale_lease = 3.0 if stopped_by == "heartbeat" else 3600.0
    job = await durable_queue.enqueue("hold", max_attempts=3)
    stale = start_stale_worker(durable_setup.url, tmp_path, stale_lease)
    try:
        await wait_for_event(tmp_path, "start stale")
        async with fenced_worker(durable_queue, tmp_path, "new", lease=30.0):
            try:
                await replay_under_the_stale_worker(durable_queue, job.id, tmp_path, stopped_by)
                assert await wait_for_exit(stale) == 0
                (tmp_path / "release-new").touch()
                assert await durable_queue.result(job.id, timeout=DEADLINE) == "new"
            finally:
                # Whatever failed, no handler may hold on: the worker would wait for it.
                for name in ("stale", "new"):
                    (tmp_path / f"release-{name}").touch()
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()
    seen = events(tmp_path)
    assert [line for line in seen if line.startswith("outcome")] == [
        "outcome stale lost",
        "outcome new completed",
    ]
    ended = [line for line in seen if line.startswith("end")]
    if stopped_by == "heartbeat":
        assert ended == ["end new"]
    elif durable_setup.name == "sqlite":
        assert ended == ["end stale", "end new"]
    else:  # the pushed cancel stops it, unless its release comes first: then it is refused
        assert ended in (["end new"], ["end stale", "end new"])
    done = await durable_queue.get_job(job.id)
    assert (done.status, done.result, done.worker_id) == (JobStatus.COMPLETED, "new", "new")

"""`queuekit worker --processes N`: N worker processes on one backend, a crashed one started
again, all drained by one SIGTERM, one log for all."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import anyio

import queuekit
from queuekit import JobStatus
from queuekit.registry import list_workers

from ..cli.test_cli import FAST_WORKER, QUEUEKIT, ROOT
from ..waiting import eventually


async def _pids(queue: queuekit.Queue) -> set[int]:
    return {worker.pid for worker in await list_workers(queue.backend)}


async def test_a_supervisor_runs_restarts_and_drains_its_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with queuekit.connect(url) as queue:
        supervisor = subprocess.Popen(
            [QUEUEKIT, "worker", "tests.cli.app:tasks", *FAST_WORKER, "--processes", "3"],
            cwd=ROOT,
            env={**os.environ, "QUEUEKIT_URL": url},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first: set[int] = set()

            async def three_running() -> bool:
                first.update(await _pids(queue))
                return len(first) == 3

            await eventually(three_running, "three worker processes registered")
            assert supervisor.pid not in first
            victim = min(first)
            os.kill(victim, signal.SIGKILL)

            async def started_again() -> bool:
                return bool((await _pids(queue)) - first)

            await eventually(started_again, "a worker process started in place of the killed one")
            jobs = [await queue.enqueue("double", {"n": n}) for n in range(30)]
            for job in jobs:
                assert await queue.result(job.id, timeout=60) == 2 * job.payload["n"]
        finally:
            supervisor.send_signal(signal.SIGTERM)
            _, log = await anyio.to_thread.run_sync(lambda: supervisor.communicate(timeout=60))
        assert supervisor.returncode == 0, log
        assert "worker process 1 started" in log and "starting it again" in log
        assert "SIGTERM: draining 3 worker processes" in log
        for index in (1, 2, 3):
            assert f"[{index}] SIGTERM: shutting down" in log, log
        assert (await queue.stats()).completed == 30
        for job in jobs:
            assert (await queue.get_job(job.id)).status == JobStatus.COMPLETED


def test_a_memory_backend_runs_in_one_process() -> None:
    failed = subprocess.run(
        [QUEUEKIT, "worker", "tests.cli.app:tasks", "--url", "memory://", "--processes", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode != 0
    assert "a memory:// backend lives in one process: use --processes 1" in failed.stderr

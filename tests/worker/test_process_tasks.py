"""Tasks with `process=True`: run in child processes of the worker's `ProcessPool`, killed at
their timeout or cancel, replaced after `max_jobs`, their exceptions and results carried back."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

import queuekit
from queuekit import JobStatus, Tasks, Worker
from queuekit.errors import InvalidOptionError
from queuekit.process_pool import ProcessPool

from ..waiting import eventually
from .process_tasks import crunch, tasks


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _ended(queue: queuekit.Queue, job_id: str) -> None:
    async def dead() -> bool:
        return (await queue.get_job(job_id)).status == JobStatus.DEAD

    await eventually(dead, f"job {job_id} ended dead")


async def _pid_in(path: Path) -> int:
    written = anyio.Path(path)

    async def wrote() -> bool:
        return await written.exists() and await written.read_text() != ""

    await eventually(wrote, "the task wrote its pid")
    return int(await written.read_text())


async def test_process_tasks_run_in_other_processes_and_return() -> None:
    queue = queuekit.connect("memory://")
    jobs = [
        await crunch.enqueue(queue, 1000),
        await queue.enqueue("pid"),
        await queue.enqueue("later", 41),
    ]
    async with Worker(queue, tasks, process_pool=ProcessPool(size=2)):
        results = [await queue.result(job.id, timeout=60) for job in jobs]
    assert results[0] == sum(i * i for i in range(1000))
    assert results[1] != os.getpid() and results[2] == 42


async def test_a_process_is_replaced_after_max_jobs() -> None:
    queue = queuekit.connect("memory://")
    jobs = [await queue.enqueue("pid") for _ in range(4)]
    async with Worker(queue, tasks, concurrency=1, process_pool=ProcessPool(size=1, max_jobs=2)):
        pids = [await queue.result(job.id, timeout=60) for job in jobs]
    assert pids[0] == pids[1] and pids[2] == pids[3] and pids[0] != pids[2]


async def test_a_timeout_kills_the_process(tmp_path: Path) -> None:
    queue = queuekit.connect("memory://")
    job = await queue.enqueue("hang", str(tmp_path / "pid"), max_attempts=1)
    async with Worker(queue, tasks):
        pid = await _pid_in(tmp_path / "pid")
        await _ended(queue, job.id)
    assert not _alive(pid)
    final = await queue.get_job(job.id)
    assert final.status == JobStatus.DEAD and "TimeoutError" in (final.last_error or "")


async def test_a_timeout_counts_from_when_the_process_has_started() -> None:
    """Starting a process (spawned: a new interpreter importing the worker's modules) is not
    the job's time: a 1 s timeout holds though the process takes 2 s to start."""
    script = Path(__file__).with_name("slow_start.py")
    ran = await anyio.run_process([sys.executable, str(script)], check=False)
    assert (ran.returncode, ran.stdout.decode()) == (0, "42\n"), ran.stderr.decode()


async def test_a_cancel_kills_the_process(tmp_path: Path) -> None:
    queue = queuekit.connect("memory://")
    job = await queue.enqueue("block", str(tmp_path / "pid"))
    async with Worker(queue, tasks):
        pid = await _pid_in(tmp_path / "pid")
        assert _alive(pid)
        assert (await queue.cancel(job.id)).status == JobStatus.CANCELLED
        await eventually(lambda: not _alive(pid), "the cancelled job's process was killed")


async def test_exceptions_and_crashes_come_back() -> None:
    queue = queuekit.connect("memory://")
    refused = await queue.enqueue("refuse")
    crashed = await queue.enqueue("crash")
    async with Worker(queue, tasks):
        for job in (refused, crashed):
            await _ended(queue, job.id)
    refused_error = (await queue.get_job(refused.id)).last_error or ""
    assert refused_error.startswith("Refused: not this one")
    assert "raised in process task" in refused_error
    crash_error = (await queue.get_job(crashed.id)).last_error or ""
    assert crash_error.startswith("ProcessTaskError: the process running the job exited (code 3)")


def test_a_process_task_must_be_importable() -> None:
    def nested() -> None:
        pass

    with pytest.raises(InvalidOptionError, match="top level of a module"):
        Tasks().task(process=True)(nested)
    with pytest.raises(InvalidOptionError, match="size must be an int >= 1"):
        ProcessPool(size=0)

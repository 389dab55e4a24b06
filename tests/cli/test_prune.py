"""Pruning from the terminal: `queuekit jobs prune` once, `queuekit worker --retention` always."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import anyio

import queuekit
from queuekit import JobNotFoundError, Queue

from ..setups import BackendSetup
from ..waiting import eventually
from .test_cli import FAST_WORKER, QUEUEKIT, ROOT, fails, ok

RETENTION = ["--retention", "cancelled=0,completed=1d,interval=0.05"]


async def test_prune_deletes_the_states_it_is_given(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    async with queuekit.connect(url) as queue:
        for _ in range(3):
            await queue.cancel((await queue.enqueue("noop")).id)
        waiting = await queue.enqueue("noop")

    def prune(*args: str) -> str:
        return ok("jobs", "prune", *args, url=url)

    assert await anyio.to_thread.run_sync(prune, "--older-than", "1d") == "pruned 0 jobs\n"
    # --older-than is every state's retention unless a state has its own.
    assert await anyio.to_thread.run_sync(prune, "--older-than", "0", "--cancelled", "7d") == (
        "pruned 0 jobs\n"
    )
    assert await anyio.to_thread.run_sync(prune, "--cancelled", "0s") == "pruned 3 jobs\n"
    async with queuekit.connect(url) as queue:
        assert [job.id for job in (await queue.list_jobs()).jobs] == [waiting.id]


def test_prune_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert "say what to prune" in fails("jobs", "prune", url=url)
    assert "'7x' is not a duration" in fails("jobs", "prune", "--dead", "7x", url=url)
    assert "'-1' is not a duration" in fails("jobs", "prune", "--dead", "-1", url=url)
    assert "'inf' is not a duration" in fails("jobs", "prune", "--older-than", "inf", url=url)
    bad = fails("worker", "tests.cli.app:tasks", "--retention", "done=1d", url=url)
    assert "'done=1d': use completed, cancelled, dead, activity, interval=DURATION" in bad
    assert "not a duration" in fails(
        "worker", "tests.cli.app:tasks", "--retention", "dead=soon", url=url
    )
    assert "the retention interval must be finite and > 0" in fails(
        "worker", "tests.cli.app:tasks", "--retention", "dead=1d,interval=0", url=url
    )


async def test_a_worker_with_a_retention_prunes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with queuekit.connect(url) as queue:
        kept = await queue.enqueue("double", {"n": 1})
        cancelled = await queue.enqueue("double", {"n": 2}, delay=3600)
        await queue.cancel(cancelled.id)
        worker = subprocess.Popen(
            [QUEUEKIT, "worker", "tests.cli.app:tasks", "--url", url, *FAST_WORKER, *RETENTION],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert await queue.result(kept.id, timeout=20) == 2
            await eventually(lambda: _gone(queue, cancelled.id), "the cancelled job pruned")
        finally:
            worker.send_signal(signal.SIGTERM)
            _, log = await anyio.to_thread.run_sync(lambda: worker.communicate(timeout=30))
        assert worker.returncode == 0, log
        assert "pruned 1 finished jobs" in log
        assert (await queue.get_job(kept.id)).status == "completed"


async def _gone(queue: Queue, job_id: str) -> bool:
    try:
        await queue.get_job(job_id)
    except JobNotFoundError:
        return True
    return False

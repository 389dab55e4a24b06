"""Workers in the registry: listed with what they run, drained on request, gone once they stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio

import queuekit
from queuekit import JobStatus, Limits, Queue, Worker
from queuekit.registry import WorkerInfo, drain_worker, list_workers

from ..setups import BackendSetup
from ..waiting import eventually
from .held import Held
from .options import FAST

ROOT = Path(__file__).resolve().parents[2]


async def entry(queue: Queue, worker_id: str) -> WorkerInfo | None:
    found = [w for w in await list_workers(queue.backend) if w.id == worker_id]
    return found[0] if found else None


async def test_a_drained_worker_finishes_its_job_claims_no_more_and_leaves(queue: Queue) -> None:
    held = Held()
    await queue.set_limits("a", Limits(concurrency=5))
    running = await queue.enqueue("held", queue="a")
    # A claim under way when the worker learns of the drain still runs what it takes: the job
    # enqueued after the drain must come once none is, or such a claim could take it.
    claims_under_way = 0
    claim = queue.backend.claim

    async def counted_claim(*args: Any, **kwargs: Any) -> list[queuekit.Job]:
        nonlocal claims_under_way
        claims_under_way += 1
        try:
            return await claim(*args, **kwargs)
        finally:
            claims_under_way -= 1

    queue.backend.claim = counted_claim  # type: ignore[method-assign]
    worker = Worker(
        queue,
        held.tasks,
        queues={"a": 2, "b": 1},
        concurrency=2,
        worker_id="registry-test",
        registry_interval=0.2,
        **FAST,
    )
    async with worker:
        await held.started.wait()

        async def listed_with_its_job() -> bool:
            info = await entry(queue, "registry-test")
            return info is not None and info.job_ids == [running.id]

        await eventually(listed_with_its_job, "the worker listed with its running job")
        info = await entry(queue, "registry-test")
        assert info is not None
        assert (info.queues, info.concurrency, info.running) == ({"a": 2, "b": 1}, 2, 1)
        assert info.limits == {"a": Limits(concurrency=5)}
        assert (info.host, info.pid, info.state) == (socket.gethostname(), os.getpid(), "running")
        assert info.version == version("queuekit")
        assert info.started_at <= info.last_seen

        await drain_worker(queue.backend, "registry-test")
        info = await entry(queue, "registry-test")
        assert info is not None and info.state == "draining"
        await eventually(lambda: worker.presence.draining, "the worker learned of the drain")
        await eventually(lambda: claims_under_way == 0, "the claim under way, if any, ended")
        later = await queue.enqueue("held", queue="a")  # claims have stopped: it stays
        assert await entry(queue, "registry-test") is not None  # listed while it drains
        held.release.set()

        async def gone() -> bool:
            return await entry(queue, "registry-test") is None

        await eventually(gone, "the drained worker left the registry")
        assert (await queue.get_job(running.id)).status == JobStatus.COMPLETED
        assert (await queue.get_job(later.id)).status == JobStatus.PENDING
        assert worker.processed == 1


def start(url: str, worker_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.worker.registry_worker", url, worker_id],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def test_a_worker_process_drains_and_exits_and_a_killed_one_expires(
    durable_setup: BackendSetup, tmp_path: Path
) -> None:
    assert durable_setup.url is not None
    done = tmp_path / "done"
    async with queuekit.connect(durable_setup.make()) as queue:
        job = await queue.enqueue("wait_for_file", {"path": str(done)}, queue="registry")

        async def listed() -> dict[str, WorkerInfo]:
            return {w.id: w for w in await list_workers(queue.backend)}

        drained = start(durable_setup.url, "drained")
        killed: subprocess.Popen[bytes] | None = None
        try:

            async def running_the_job() -> bool:
                info = (await listed()).get("drained")
                return info is not None and info.job_ids == [job.id]

            await eventually(running_the_job, "the first worker listed, running the job")
            killed = start(durable_setup.url, "killed")

            async def both() -> bool:
                return set(await listed()) == {"drained", "killed"}

            await eventually(both, "the second worker listed")
            await drain_worker(queue.backend, "drained")
            killed.send_signal(signal.SIGKILL)

            left: dict[str, WorkerInfo] = {}

            async def killed_gone() -> bool:
                left.clear()
                left.update(await listed())
                return set(left) == {"drained"}

            # It beats no more: it leaves the list once its ttl (5 beats) has passed.
            await eventually(killed_gone, "the killed worker left the list")
            assert left["drained"].state == "draining"
            assert drained.poll() is None  # it waits for its job to finish
            done.touch()
            with anyio.fail_after(60):
                while drained.poll() is None:
                    await anyio.sleep(0.02)
            assert drained.returncode == 0
            assert await listed() == {}
            assert (await queue.get_job(job.id)).status == JobStatus.COMPLETED
        finally:
            for process in (drained, killed):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()

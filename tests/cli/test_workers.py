"""`queuekit workers` and `queuekit workers drain`, run as a user would, against a live worker."""

from __future__ import annotations

from functools import partial

import anyio

from queuekit import Queue, Tasks, Worker
from queuekit.registry import list_workers

from ..setups import BackendSetup
from ..waiting import eventually
from ..worker.options import FAST
from .test_cli import fails, ok, ok_json


async def test_list_and_drain_a_worker_from_the_terminal(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    assert ok("workers", url=url).strip() == "no worker is running"
    assert ok_json("workers", url=url) == []
    async with Queue(durable_setup.make()) as queue:
        worker = Worker(
            queue,
            Tasks(),
            queues={"mail": 2, "sms": 1},
            concurrency=2,
            worker_id="cli-worker",
            registry_interval=0.2,
            **FAST,
        )
        async with worker:

            async def listed() -> bool:
                return [w.id for w in await list_workers(queue.backend)] == ["cli-worker"]

            await eventually(listed, "the worker listed")
            # The commands run in threads, so the worker beats on meanwhile.
            (row,) = await anyio.to_thread.run_sync(partial(ok_json, "workers", url=url))
            assert row["id"] == "cli-worker" and row["state"] == "running"
            assert row["queues"] == {"mail": 2, "sms": 1} and row["concurrency"] == 2
            assert row["running"] == 0 and row["job_ids"] == []
            assert row["started_at"] <= row["last_seen"]
            shown = await anyio.to_thread.run_sync(partial(ok, "workers", url=url))
            header, line = shown.splitlines()
            assert header.split()[:4] == ["ID", "HOST", "PID", "STATE"]
            assert line.startswith("cli-worker") and " running " in line
            assert "mail=2 sms=1" in line

            said = await anyio.to_thread.run_sync(
                partial(ok, "workers", "drain", "cli-worker", url=url)
            )
            assert said.strip().startswith("worker cli-worker asked to drain")
            await eventually(lambda: worker.presence.draining, "the worker learned of the drain")

            async def gone() -> bool:
                return await list_workers(queue.backend) == []

            await eventually(gone, "the drained worker left the list")
    error = fails("workers", "drain", "cli-worker", url=url)
    assert error == "queuekit: error: no running worker has id 'cli-worker'"

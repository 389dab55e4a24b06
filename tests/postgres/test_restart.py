"""A PostgreSQL restart in the middle of a claim/complete loop: calls fail with
`BackendUnavailableError` while it is down, the backend recovers, and every job is completed
exactly once (a completion lost with the connection is redone after the lease expires).

Runs on a private cluster made with initdb on a spare loopback port, never the shared server.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Iterator
from typing import TypeVar

import pytest

import queuekit
from queuekit import BackendUnavailableError, JobStatus
from queuekit.backends.postgres import PostgresBackend

from ..setups import skip_for_missing
from .cluster import THROWAWAY_SETTINGS, PrivateCluster, programs_found, running_cluster

pytestmark = pytest.mark.slow
T = TypeVar("T")


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    if not programs_found():
        skip_for_missing("initdb/pg_ctl")
    with running_cluster(THROWAWAY_SETTINGS) as cluster:
        yield cluster


async def test_every_job_completes_exactly_once_across_a_restart(
    private_cluster: PrivateCluster,
) -> None:
    total = 600
    backend = PostgresBackend(private_cluster.dsn, max_pool_size=6, connect_timeout=2)
    await backend.open()
    try:
        jobs = await backend.enqueue_many(
            [queuekit.new_job("t", {"n": n}, max_attempts=50) for n in range(total)]
        )
        completed: list[str] = []  # complete() said True
        uncertain: set[str] = set()  # complete() raised: it may or may not have committed
        failures = Counter[str]()
        stop = asyncio.Event()

        async def call_safely(what: str, call: Awaitable[T]) -> T | None:
            try:
                return await call
            except BackendUnavailableError:
                failures[what] += 1
                await asyncio.sleep(0.05)
                return None

        async def worker(name: str) -> None:
            while not stop.is_set():
                claim = backend.claim({"default": 5}, limit=5, lease=1.0, worker_id=name)
                claimed = await call_safely("claim", claim)
                if not claimed:
                    await call_safely("wait", backend.wait_for_work(["default"], 0.2))
                    continue
                await asyncio.sleep(0.04)  # the "work"
                outcomes = await asyncio.gather(
                    *(backend.complete(job.attempt) for job in claimed), return_exceptions=True
                )
                for job, outcome in zip(claimed, outcomes, strict=True):
                    if outcome == JobStatus.COMPLETED:
                        completed.append(job.id)
                        if len(completed) >= total // 4:
                            busy.set()
                    elif isinstance(outcome, BackendUnavailableError):
                        failures["complete"] += 1
                        uncertain.add(job.id)
                    elif outcome is not None:  # None: the lease was lost (rescued meanwhile)
                        raise AssertionError(f"unexpected outcome {outcome!r}")

        async def rescuer() -> None:
            while not stop.is_set():
                await call_safely("rescue", backend.rescue())
                await asyncio.sleep(0.2)

        busy = asyncio.Event()

        async def restart_when_busy() -> int:
            await busy.wait()
            done_before = len(completed)
            await asyncio.to_thread(private_cluster.restart, "fast")
            return done_before

        tasks = [asyncio.create_task(worker(f"w{n}")) for n in range(4)]
        tasks.append(asyncio.create_task(rescuer()))
        done_before_restart = await asyncio.wait_for(restart_when_busy(), 60)

        async def all_completed() -> None:
            while True:
                try:
                    if (await backend.stats("default")).completed == total:
                        return
                except BackendUnavailableError:
                    pass
                await asyncio.sleep(0.1)

        try:
            await asyncio.wait_for(all_completed(), 60)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

        assert done_before_restart < total, "the restart came after the work was done"
        assert sum(failures.values()) > 0, "the restart went unnoticed"
        counts = Counter(completed)
        assert not [job_id for job_id, n in counts.items() if n > 1], "completed twice"
        assert {job.id for job in jobs} <= set(counts) | uncertain
        for job in jobs:
            stored = await backend.get_job(job.id)
            assert stored is not None and stored.status == JobStatus.COMPLETED
    finally:
        await backend.close()

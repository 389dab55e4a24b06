"""A Redis with `appendfsync always`, SIGKILLed and restarted while jobs flow through it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import anyio
import pytest
import redis.asyncio as aioredis

import queuekit
from benchmarks.system import free_ports
from queuekit import BackendUnavailableError, InvalidOptionError, JobStatus
from queuekit.backends.redis import RedisBackend

from .invariants import check_queue
from .server import RedisServer

pytestmark = pytest.mark.slow
TOTAL = 600
KILL_AFTER = 200
LEASE = 1.0


async def test_acknowledged_jobs_survive_a_kill_and_complete_once(tmp_path: Path) -> None:
    """With `appendonly yes` and `appendfsync always`, Redis writes and fsyncs the AOF before
    it replies, so every enqueue that returned is on disk when the server is SIGKILLed.
    Calls cut off by the kill have unknown outcomes (they may or may not have happened);
    leases and the rescuer bring back jobs whose claim or completion was lost that way.
    Every acknowledged job ends completed, and no job is ever completed twice."""
    (port,) = free_ports(1)
    server = RedisServer(tmp_path, port, "--appendonly", "yes", "--appendfsync", "always")
    url = f"{server.url}?queuekit_prefix=restart"
    producer, consumer = RedisBackend(url, strict_keys=True), RedisBackend(url, strict_keys=True)
    server.start()  # just before the `try` that stops it
    acknowledged: set[str] = set()
    completions: Counter[str] = Counter()
    unknown_completions = outages = 0
    produced = anyio.Event()
    try:
        await producer.open()
        await consumer.open()

        async def produce() -> None:
            nonlocal outages
            for n in range(TOTAL):
                request = queuekit.new_job("t", {"n": n}, id=f"job-{n}")
                while True:
                    try:
                        acknowledged.add((await producer.enqueue(request)).id)
                        break
                    except BackendUnavailableError:
                        outages += 1
                        await anyio.sleep(0.02)  # not acknowledged: try again
                    except InvalidOptionError:
                        break  # the cut-off try did store it; it was never acknowledged
                if n == KILL_AFTER:
                    server.kill()
                    await anyio.sleep(0.2)
                    server.start()
            produced.set()

        async def consume() -> None:
            nonlocal unknown_completions, outages
            while True:
                try:
                    await consumer.rescue()
                    jobs = await consumer.claim(
                        {"default": 10}, limit=10, lease=LEASE, worker_id="w"
                    )
                except BackendUnavailableError:
                    outages += 1
                    await anyio.sleep(0.02)
                    continue
                for job in jobs:
                    try:
                        if await consumer.complete(job.attempt):
                            completions[job.id] += 1
                    except BackendUnavailableError:
                        unknown_completions += 1
                if not jobs:
                    stats = await consumer.stats("default")
                    if produced.is_set() and stats.pending == stats.running == stats.failed == 0:
                        return
                    await consumer.wait_for_work(["default"], 0.1)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                group.start_soon(produce)
                group.start_soon(consume)

        print(f"outages {outages}, completions cut off {unknown_completions}")
        assert outages > 0, "the kill went unnoticed"
        assert len(acknowledged) >= TOTAL - 5
        assert max(completions.values()) == 1, "a job was completed twice"
        for job_id in acknowledged:
            job = await consumer.get_job(job_id)
            assert job is not None and job.status == JobStatus.COMPLETED, job_id
        not_seen_completing = [job_id for job_id in acknowledged if not completions[job_id]]
        assert len(not_seen_completing) <= unknown_completions
        raw = aioredis.Redis.from_url(server.url, decode_responses=True)
        try:
            counts = await check_queue(raw, consumer, "default")
        finally:
            await raw.aclose()
        assert counts["completed"] >= len(acknowledged)
    finally:
        await producer.close()
        await consumer.close()
        server.stop()

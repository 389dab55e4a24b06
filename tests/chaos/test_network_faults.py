"""Network faults on private servers: a worker whose connections the server closes reconnects
and carries on; an enqueue while the server is down raises `BackendUnavailableError` and
never reports a job that was not stored."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import anyio
import pytest

import queuekit
from queuekit import BackendUnavailableError, JobStatus, Queue, Worker
from queuekit.backends.memory import MemoryBackend

from ..waiting import eventually
from .servers import Store, store_for
from .test_chaos import require_servers

pytestmark = pytest.mark.slow
SERVERS = ["postgres", "redis"]

tasks = queuekit.Tasks()


@tasks.task("t")
async def t() -> str:
    await anyio.sleep(0.01)
    return "ok"


@pytest.fixture(params=SERVERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    require_servers(request.param)
    with store_for(request.param, tmp_path) as store:
        yield store


async def drop_connections(url: str) -> int:
    """Have the server close every other client's connection; return how many it closed."""
    if url.startswith("redis"):
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url)
        try:
            return int(await client.execute_command("CLIENT", "KILL", "TYPE", "normal"))  # type: ignore[no-untyped-call]
        finally:
            await client.aclose()
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return len(rows)
    finally:
        await conn.close()


async def wait_completed(queue: Queue, count: int, seconds: float = 30) -> None:
    with anyio.fail_after(seconds):
        while True:
            try:
                if (await queue.stats()).completed >= count:
                    return
            except BackendUnavailableError:
                pass
            await anyio.sleep(0.05)


async def test_worker_reconnects_after_the_server_drops_it(store: Store) -> None:
    async with queuekit.connect(store.url) as queue:
        worker = Worker(queue, tasks, lease=2.0, poll_interval=0.1, rescue_interval=0.5)
        async with worker:
            await queue.enqueue_many(queuekit.new_job("t") for _ in range(50))
            await wait_completed(queue, 50)
            for round in range(3):
                assert await drop_connections(store.url) >= 1
                await anyio.sleep(0.2)
                # The producer's own connections were dropped too: it reconnects on use.
                with anyio.fail_after(10):
                    while True:
                        try:
                            await queue.enqueue_many(queuekit.new_job("t") for _ in range(50))
                            break
                        except BackendUnavailableError:
                            await anyio.sleep(0.1)
                await wait_completed(queue, 100 + 50 * round)
        stats = await queue.stats()
        assert stats.completed == 200 and stats.dead == 0 and stats.running == 0


async def test_enqueue_while_down_raises_and_stores_nothing(store: Store) -> None:
    assert store.stop is not None and store.start is not None
    async with queuekit.connect(store.url) as queue:
        before = await queue.enqueue("t")
        await anyio.to_thread.run_sync(store.stop)
        for n in range(3):
            with anyio.fail_after(30), pytest.raises(BackendUnavailableError):
                await queue.enqueue("t", id=f"while-down-{n}")
        with anyio.fail_after(30), pytest.raises(BackendUnavailableError):
            await queue.enqueue_many([queuekit.new_job("t", id="while-down-bulk")])
        await anyio.to_thread.run_sync(store.start)
        with anyio.fail_after(20):
            while True:
                try:
                    after = await queue.enqueue("t", id="after")
                    break
                except BackendUnavailableError:
                    await anyio.sleep(0.1)
        ids = {job.id for job in (await queue.list_jobs(limit=100)).jobs}
        assert ids == {before.id, after.id}
        assert (await queue.get_job(before.id)).status == JobStatus.PENDING


class DroppingBackend(MemoryBackend):
    """A memory backend whose wait for work fails, as a dropped connection makes it fail."""

    drops = 0

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        if self.drops < 3:
            self.drops += 1
            raise BackendUnavailableError("connection dropped")
        await super().wait_for_work(queues, timeout)


async def test_a_failed_wait_for_work_does_not_end_the_worker() -> None:
    backend = DroppingBackend()
    async with queuekit.connect(backend) as queue:
        async with Worker(queue, tasks, poll_interval=0.05):
            # Idle: the waits fail, and the worker carries on.
            await eventually(lambda: backend.drops == 3, "three failed waits for work")
            job = await queue.enqueue("t")
            assert await queue.result(job.id, timeout=10) == "ok"
        assert backend.drops == 3

"""taskiq on Redis (taskiq-redis streams): `kiq` per job, no bulk API, its receiver in-process."""

from __future__ import annotations

from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from .. import probe
from .base import Peer


async def probe_job(n: int) -> None:
    await probe.job(n)


class Taskiq(Peer):
    async def open(self) -> None:
        # RedisStreamBroker, not ListQueueBroker: a list pop loses the jobs a killed worker held,
        # while a stream's consumer group keeps them pending until acknowledged (after the job
        # ran) and reclaims them from dead consumers. It keeps no results: its result backend
        # is taskiq's default, which stores nothing. The worker blocks on XREADGROUP: no polling.
        self.broker = RedisStreamBroker(self.servers.redis_url)
        self.task = self.broker.register_task(probe_job, "probe_job")
        # startup() creates the stream's consumer group. It starts at "$" (new messages only),
        # so the enqueuing side must create it before the first job, not the worker.
        await self.broker.startup()

    async def close(self) -> None:
        await self.broker.shutdown()

    async def enqueue(self, n: int) -> None:
        await self.task.kiq(n)

    async def work(self, concurrency: int) -> None:
        # What `taskiq worker` runs, minus its process management; open() already started up.
        await run_receiver_task(self.broker, max_async_tasks=concurrency)

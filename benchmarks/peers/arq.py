"""arq on Redis: one `enqueue_job` per job (arq has no bulk enqueue), its `Worker` in-process."""

from __future__ import annotations

from typing import Any

from arq import Worker, create_pool
from arq.connections import RedisSettings

from .. import probe
from .base import Peer


async def probe_job(ctx: dict[str, Any], n: int) -> None:
    await probe.job(n)


class Arq(Peer):
    async def open(self) -> None:
        # from_dsn takes the database number from the URL's path.
        self.redis = await create_pool(RedisSettings.from_dsn(self.servers.redis_url))

    async def close(self) -> None:
        await self.redis.aclose()

    async def enqueue(self, n: int) -> None:
        await self.redis.enqueue_job("probe_job", n)

    async def work(self, concurrency: int) -> None:
        worker = Worker(
            [probe_job],
            redis_pool=self.redis,
            max_jobs=concurrency,
            # arq polls its queue (a sorted set), every 0.5 s by default.
            poll_delay=0.01,
            # arq keeps every result an hour by default; 0 means "not kept" (documented).
            keep_result=0,
        )
        await worker.async_run()

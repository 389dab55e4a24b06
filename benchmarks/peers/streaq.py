"""streaq on Redis: `task.enqueue` per job, `enqueue_many` in bulk, its `Worker` in-process."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

from streaq import Worker

from .. import probe
from .base import Peer


async def probe_job(n: int) -> None:
    await probe.job(n)


class Streaq(Peer):
    has_bulk_enqueue = True

    def worker(self, **options: Any) -> tuple[Any, Any]:
        """A streaq `Worker` and the probe task registered on it."""
        # The URL's path picks the database: coredis reads it in `Redis.from_url`.
        worker = Worker(redis_url=self.servers.redis_url, **options)
        # streaq keeps results 5 minutes by default; ttl=0 is documented as "never store".
        return worker, worker.task(ttl=0)(probe_job)

    async def open(self) -> None:
        # Enqueueing needs a worker's context (its connection and Redis functions) entered.
        self.client, self.task = self.worker()
        self.stack = AsyncExitStack()
        await self.stack.enter_async_context(self.client)

    async def close(self) -> None:
        await self.stack.aclose()

    async def enqueue(self, n: int) -> None:
        await self.task.enqueue(n)

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        # enqueue_many sends unawaited tasks in one pipeline.
        await self.client.enqueue_many([self.task.enqueue(n) for n in ns])

    async def work(self, concurrency: int) -> None:
        # A context can't be entered twice and run_async enters its own, so a second worker.
        worker, _ = self.worker(concurrency=concurrency)
        await worker.run_async()

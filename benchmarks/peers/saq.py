"""saq on Redis and on PostgreSQL: one `Queue.enqueue` per job (saq has no bulk enqueue)."""

from __future__ import annotations

from typing import Any

from saq import Queue, Worker

from .. import probe
from .base import Peer


async def probe_job(ctx: dict[str, Any], *, n: int) -> None:
    await probe.job(n)


class Saq(Peer):
    # `Queue.map` enqueues many jobs but then waits for their results, and `Queue.batch` only
    # aborts a group on error: neither is a bulk enqueue.

    def url(self) -> str:
        raise NotImplementedError

    async def open(self) -> None:
        # On PostgreSQL, connect() creates saq's tables (its migrations) when they are missing.
        self.queue = Queue.from_url(self.url())
        await self.queue.connect()

    async def close(self) -> None:
        await self.queue.disconnect()

    async def enqueue(self, n: int) -> None:
        # A job's ttl is how long saq keeps it and its result once done (600 s by default);
        # -1 is documented as "disabled": the finished job is deleted.
        await self.queue.enqueue("probe_job", n=n, ttl=-1)

    async def work(self, concurrency: int) -> None:
        # No poll interval to set: on Redis a worker blocks on BLMOVE, and on PostgreSQL it
        # waits for LISTEN/NOTIFY (saq's default; polling is opt-in).
        await Worker(self.queue, [probe_job], concurrency=concurrency).start()


class SaqRedis(Saq):
    def url(self) -> str:
        return self.servers.redis_url


class SaqPostgres(Saq):
    def url(self) -> str:
        return self.servers.postgres_dsn

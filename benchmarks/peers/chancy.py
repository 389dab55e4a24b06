"""chancy on PostgreSQL (psycopg): `push` per job, `push_many` in bulk, its `Worker` in-process."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import chancy

from .. import probe
from .base import Peer

QUEUE = "default"
"""The queue chancy's worker declares for itself; declared here first, with our settings."""
POLLING_INTERVAL = 1
"""Seconds between polls of the queue (whole seconds; 5 by default)."""
INSTALL_LOCK = 0x6368616E6379
"""An advisory lock: a worker and an enqueuer opening on a fresh database migrate once."""


async def probe_job(n: int) -> None:
    await probe.job(n)


# chancy's decorator, called rather than applied: it returns the function with a `job` added.
PROBE: Any = chancy.job(queue=QUEUE)(probe_job)


class Chancy(Peer):
    has_bulk_enqueue = True

    async def open(self) -> None:
        # chancy installs an INFO handler on its default logger, which logs every job it pulls
        # and runs; a logger without handlers prints warnings only, as the other libraries do.
        self.app = chancy.Chancy(self.servers.postgres_dsn, log=logging.getLogger("chancy"))
        await self.app.__aenter__()
        async with self.app.pool.connection() as connection:
            # Held until the block commits, while the migrations use other connections.
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", [INSTALL_LOCK])
            if not await self.app.is_up_to_date():
                await self.app.migrate()

    async def close(self) -> None:
        await self.app.__aexit__(None, None, None)

    async def enqueue(self, n: int) -> None:
        await self.app.push(PROBE.job.with_kwargs(n=n))

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        jobs: list[Any] = [PROBE.job.with_kwargs(n=n) for n in ns]
        # One transaction per call (an INSERT per job inside it), one NOTIFY.
        async for _ in self.app.push_many(jobs):
            pass

    async def work(self, concurrency: int) -> None:
        # Queues live in the database; upsert replaces the defaults the worker would declare.
        # AsyncExecutor: the jobs are coroutines run on this event loop, as with arq or taskiq
        # (the default ProcessExecutor runs each job in a pool of processes). The worker wakes
        # on LISTEN/NOTIFY when jobs are pushed and otherwise polls every polling_interval;
        # eager_polling polls again as soon as a job completes, not at the next interval.
        await self.app.declare(
            chancy.Queue(
                QUEUE,
                concurrency=concurrency,
                executor=chancy.Chancy.Executor.Async,
                polling_interval=POLLING_INTERVAL,
                eager_polling=True,
            ),
            upsert=True,
        )
        async with chancy.Worker(self.app) as worker:
            await worker.wait_for_shutdown()

"""PgQueuer on PostgreSQL, through its asyncpg driver."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager

from .. import probe
from .base import Peer

ENTRYPOINT = "probe"
DEFAULT_BATCH_SIZE = 10
"""`QueueManager.run`'s default."""
INSTALL_LOCK = 0x7067717565756572
"""An advisory lock: a worker and an enqueuer opening on a fresh database install once."""


async def probe_job(job: Job) -> None:
    assert job.payload is not None
    await probe.job(int(job.payload))


class PgQueuer(Peer):
    has_bulk_enqueue = True

    async def open(self) -> None:
        # asyncpg rather than psycopg: the driver PgQueuer's docs call its fastest.
        self.connection = await asyncpg.connect(self.servers.postgres_dsn)
        self.queries = Queries(AsyncpgDriver(self.connection))
        await self.connection.execute("SELECT pg_advisory_lock($1)", INSTALL_LOCK)
        try:
            if not await self.queries.schema_is_installed():
                await self.queries.install()
        finally:
            await self.connection.execute("SELECT pg_advisory_unlock($1)", INSTALL_LOCK)

    async def close(self) -> None:
        await self.connection.close()

    async def enqueue(self, n: int) -> None:
        await self.queries.enqueue(ENTRYPOINT, b"%d" % n)

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        # Lists instead of scalars make `enqueue` one multi-row INSERT.
        await self.queries.enqueue([ENTRYPOINT] * len(ns), [b"%d" % n for n in ns], [0] * len(ns))

    async def work(self, concurrency: int) -> None:
        manager = QueueManager(self.queries)
        if concurrency < 2:
            # max_concurrent_tasks must be at least twice the batch size, so 1 cannot be
            # expressed there; an entrypoint limit of 1 is the library's serial dispatch.
            manager.entrypoint(ENTRYPOINT, concurrency_limit=concurrency)(probe_job)
            await manager.run(batch_size=1)
            return
        manager.entrypoint(ENTRYPOINT)(probe_job)
        # max_concurrent_tasks caps the jobs this worker holds (its per-worker concurrency);
        # it must be at least twice batch_size, so the default batch of 10 shrinks below 20.
        await manager.run(
            max_concurrent_tasks=concurrency,
            batch_size=min(DEFAULT_BATCH_SIZE, concurrency // 2),
        )

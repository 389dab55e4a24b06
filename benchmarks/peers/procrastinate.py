"""Procrastinate on PostgreSQL, through its psycopg connector."""

from __future__ import annotations

from collections.abc import Sequence

import procrastinate
from procrastinate.types import JSONDict

from .. import probe
from .base import Peer

INSTALL_LOCK = 0x70726F6372617374
"""An advisory lock: a worker and an enqueuer opening on a fresh database install once."""


async def probe_job(n: int) -> None:
    await probe.job(n)


class Procrastinate(Peer):
    has_bulk_enqueue = True

    async def open(self) -> None:
        # The connector's default pool (psycopg_pool's own defaults).
        connector = procrastinate.PsycopgConnector(conninfo=self.servers.postgres_dsn)
        self.app = procrastinate.App(connector=connector)
        self.task = self.app.task(name="probe")(probe_job)
        await self.app.open_async()
        async with connector.pool.connection() as connection:
            # Held until the block commits, while the check and the install use other connections.
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", [INSTALL_LOCK])
            # True when the procrastinate_jobs table exists.
            if not await self.app.check_connection_async():
                await self.app.schema_manager.apply_schema_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def enqueue(self, n: int) -> None:
        await self.task.defer_async(n=n)

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        jobs: list[JSONDict] = [{"n": n} for n in ns]
        await self.task.batch_defer_async(*jobs)

    async def work(self, concurrency: int) -> None:
        # Only concurrency is set: LISTEN/NOTIFY (listen_notify) is on by default, and
        # fetch_job_polling_interval (5 s) is just its fallback, so it keeps its default.
        await self.app.run_worker_async(concurrency=concurrency)

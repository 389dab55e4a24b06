"""oban (the Python port of Oban) on PostgreSQL, through psycopg; it needs Python 3.12.

`enqueue` per job, `enqueue_many` in bulk, the queue's producer in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import oban
from oban.schema import install

from .. import probe
from .base import Peer

QUEUE = "default"
INSTALL_LOCK = 0x6F62616E
"""An advisory lock: a worker and an enqueuer opening on a fresh database install once."""


async def probe_job(n: int) -> None:
    await probe.job(n)


# oban's decorator, called rather than applied: a worker class named after the function.
PROBE: Any = oban.job(queue=QUEUE)(probe_job)


class Oban(Peer):
    has_bulk_enqueue = True

    async def open(self) -> None:
        # Oban.create_pool's defaults: 1 to 10 connections.
        self.pool = await oban.Oban.create_pool(self.servers.postgres_dsn)
        async with self.pool.connection() as connection:
            # Held until the block commits, while the install uses another connection.
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", [INSTALL_LOCK])
            cursor = await connection.execute("SELECT to_regclass('oban_jobs') IS NOT NULL")
            row = await cursor.fetchone()
            if not row[0]:
                await install(self.pool)
        # Client mode (no queues): what an application that only enqueues starts.
        self.oban: Any = await oban.Oban(pool=self.pool).start()

    async def close(self) -> None:
        await self.oban.stop()
        await self.pool.close()

    async def enqueue(self, n: int) -> None:
        await self.oban.enqueue(PROBE.new(n))

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        # One connection and transaction per call, an INSERT (and a pg_notify) per job.
        await self.oban.enqueue_many([PROBE.new(n) for n in ns])

    async def work(self, concurrency: int) -> None:
        # Server mode: the queue's producer runs `concurrency` jobs at a time. It fetches when
        # an insert's NOTIFY or a finished job wakes it; its stager also polls every second
        # (stager interval, the default) for jobs whose notification it missed.
        await self.oban.stop()
        self.oban = await oban.Oban(pool=self.pool, queues={QUEUE: concurrency}).start()
        await asyncio.Event().wait()

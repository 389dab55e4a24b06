"""The physical reference: bare asyncpg claim loops on one table, no queue library around them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from .. import probe
from .base import Peer

# status: 0 pending, 1 running, 2 done. The partial index keeps claims off finished rows.
# One implicit transaction under an advisory lock: processes opening at once install once.
SCHEMA = """
SELECT pg_advisory_xact_lock(7236838223418568499);
CREATE TABLE IF NOT EXISTS raw_jobs (
    id bigserial PRIMARY KEY,
    n int NOT NULL,
    status smallint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS raw_jobs_pending ON raw_jobs (id) WHERE status = 0;
"""
ENQUEUE = "INSERT INTO raw_jobs (n) VALUES ($1)"
ENQUEUE_MANY = "INSERT INTO raw_jobs (n) SELECT unnest($1::int[])"
CLAIM = """
UPDATE raw_jobs SET status = 1
WHERE id IN (
    SELECT id FROM raw_jobs WHERE status = 0 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
RETURNING id, n
"""
COMPLETE = "UPDATE raw_jobs SET status = 2 WHERE id = ANY($1::bigint[])"
IDLE_SECONDS = 0.001
"""A bare loop: no LISTEN, just a short nap when nothing is claimable."""


class SingleClaims(Peer):
    """`concurrency` connections, each claiming one job, running it and completing it."""

    has_bulk_enqueue = True

    async def open(self) -> None:
        self.connection = await asyncpg.connect(self.servers.postgres_dsn)
        await self.connection.execute(SCHEMA)

    async def close(self) -> None:
        await self.connection.close()

    async def enqueue(self, n: int) -> None:
        await self.connection.execute(ENQUEUE, n)

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        await self.connection.execute(ENQUEUE_MANY, list(ns))

    def claim_sizes(self, concurrency: int) -> list[int]:
        """One claim loop per entry, claiming up to that many jobs at a time."""
        return [1] * concurrency

    async def work(self, concurrency: int) -> None:
        # The sizes add up to `concurrency`: never more jobs claimed at once than a
        # library's worker with that concurrency would hold.
        await asyncio.gather(*(self.claim_loop(size) for size in self.claim_sizes(concurrency)))

    async def claim_loop(self, limit: int) -> None:
        connection = await asyncpg.connect(self.servers.postgres_dsn)
        try:
            while True:
                claimed = await connection.fetch(CLAIM, limit)
                if not claimed:
                    await asyncio.sleep(IDLE_SECONDS)
                    continue
                # The claimed jobs run at once, as a worker's slots run them.
                await asyncio.gather(*(probe.job(row["n"]) for row in claimed))
                await connection.execute(COMPLETE, [row["id"] for row in claimed])
        finally:
            await connection.close()


class BatchedClaims(SingleClaims):
    """One connection claiming up to `concurrency` jobs per statement, completing them in one."""

    def claim_sizes(self, concurrency: int) -> list[int]:
        # Measured against splitting the same bound over several connections (2x5, 5x2 at
        # concurrency 10; 5x10, 2x25 at 50): fewer, larger transactions win on every split.
        return [concurrency]

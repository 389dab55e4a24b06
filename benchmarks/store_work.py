"""What a phase asked of its store, per job: PostgreSQL's row writes by table, HOT updates,
indexes and WAL bytes; Redis's commands by name (a script's own commands counted)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from redis.asyncio import Redis

from . import limits_cost

Figures = list[tuple[str, float]]
"""(what, how many per job), in the order read."""

JOBS_TABLE = "queuekit_jobs"


SHOWN_FROM = 0.01
"""Commands called, or other tables written, less often per job are left out (the run's own
INFO, a connection's HELLO, the migrations' rows)."""


@asynccontextmanager
async def measured(url: str, jobs: int) -> AsyncIterator[Figures]:
    """Around the measured part of a phase on the store at `url` (from
    `limits_cost.fresh_url`): PostgreSQL's WAL bytes or Redis's commands per job, filled in
    when the block ends."""
    figures: Figures = []
    if url.startswith("postgresql"):
        wal = await _postgres_wal()
        yield figures
        figures.append(("WAL bytes", (await _postgres_wal() - wal) / jobs))
    elif url.startswith("redis"):
        before = await _redis_commands()
        yield figures
        calls = await _redis_commands()
        calls.subtract(before)
        figures.append(("commands", calls.total() / jobs))
        figures += [(name, n / jobs) for name, n in calls.most_common() if n / jobs >= SHOWN_FROM]
    else:
        yield figures


async def written(url: str, jobs: int) -> Figures:
    """PostgreSQL's row writes per job in each table of the fresh schema at `url`, over the
    whole phase (a drain's fill too): read once the phase's connections are closed, when their
    counts reach the statistics views. Nothing for another store."""
    if not url.startswith("postgresql"):
        return []
    return await _postgres_writes(url.rsplit("queuekit_schema=", 1)[1], jobs)


async def _postgres_wal() -> int:
    connection = await asyncpg.connect(limits_cost.POSTGRES)
    try:
        return int(await connection.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))
    finally:
        await connection.close()


async def _postgres_writes(schema: str, jobs: int) -> Figures:
    """Rows written per job in each table of `schema` since it was made (the whole phase: a
    drain's fill too), and the jobs table's updates that were HOT and its indexes."""
    connection = await asyncpg.connect(limits_cost.POSTGRES)
    try:
        tables = await connection.fetch(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del"
            " FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY relname",
            schema,
        )
        indexes = await connection.fetchval(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
            schema,
            JOBS_TABLE,
        )
    finally:
        await connection.close()
    figures: Figures = [(f"{JOBS_TABLE} indexes", float(indexes))]
    for table in tables:
        if table["relname"] == JOBS_TABLE:
            figures += [
                (f"{JOBS_TABLE} inserts", table["n_tup_ins"] / jobs),
                (f"{JOBS_TABLE} updates", table["n_tup_upd"] / jobs),
                (f"{JOBS_TABLE} HOT updates", table["n_tup_hot_upd"] / jobs),
                (f"{JOBS_TABLE} deletes", table["n_tup_del"] / jobs),
            ]
        elif (
            written := table["n_tup_ins"] + table["n_tup_upd"] + table["n_tup_del"]
        ) / jobs >= SHOWN_FROM:
            figures.append((f"{table['relname']} rows written", written / jobs))
    return figures


async def _redis_commands() -> Counter[str]:
    """Calls of each command so far, server-wide (the run's server runs nothing else)."""
    client = Redis.from_url(limits_cost.REDIS)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return Counter(
        {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}
    )

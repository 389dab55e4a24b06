"""Does the PostgreSQL claim stay fast with a million finished or future-scheduled rows?

    QUEUEKIT_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/postgres_claim_bloat.py [--rows 1000000]

Works in a throwaway schema (dropped at the end). For each table shape it times `claim(limit=10)`
(median and 95th percentile over many claims) and the `wait_for_work` due-time query, in two
cases: a backlog (far more ready jobs than the limit) and a trickle (fewer ready jobs than the
limit, the case where a plain index scan in claim order would step over every delayed row).
For comparison it also times that plain single-scan claim on the same data.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time

import asyncpg

import queuekit
from queuekit.backends.postgres import PostgresBackend

NAIVE_CLAIM = """
WITH chosen AS MATERIALIZED (
    SELECT seq FROM {jobs}
    WHERE queue = $1 AND status IN ('pending', 'failed') AND scheduled_at <= now()
    ORDER BY priority DESC, scheduled_at, seq
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE {jobs} AS j
SET status = 'running', attempts = j.attempts + 1, started_at = now(),
    lease_expires_at = now() + interval '30 seconds', worker_id = 'naive'
FROM chosen WHERE j.seq = chosen.seq
RETURNING j.id
"""


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:7.3f} ms   p95 {p95 * 1000:7.3f} ms"


async def time_claims(backend: PostgresBackend, ready: int, rounds: int) -> tuple[str, str]:
    """Enqueue `ready` jobs, then time claims (put back after each) and the due-time query."""
    await backend.enqueue_many([queuekit.new_job("t") for _ in range(ready)])
    claims: list[float] = []
    dues: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        jobs = await backend.claim({"default": 10}, limit=10, lease=30, worker_id="bench")
        claims.append(time.perf_counter() - started)
        assert jobs, "nothing claimed"
        # Put them back so every round sees the same table (snooze gives the attempt back).
        await asyncio.gather(*(backend.snooze(job.attempt, 0) for job in jobs))
        started = time.perf_counter()
        await backend._fetch("next_due", ["default"])
        dues.append(time.perf_counter() - started)
    return summary(claims), summary(dues)


async def time_naive(backend: PostgresBackend, rounds: int) -> str:
    pool = backend._pool
    assert pool is not None
    sql = NAIVE_CLAIM.replace("{jobs}", backend.qualified_table)
    samples: list[float] = []
    async with pool.acquire() as conn:
        for _ in range(rounds):
            transaction = conn.transaction()
            await transaction.start()
            started = time.perf_counter()
            rows = await conn.fetch(sql, "default", 10)
            samples.append(time.perf_counter() - started)
            await transaction.rollback()  # keep the table as it was
            assert rows
    return summary(samples)


async def reset_ready(backend: PostgresBackend) -> None:
    pool = backend._pool
    assert pool is not None
    await pool.execute(
        f"DELETE FROM {backend.qualified_table} WHERE status IN ('pending', 'running', 'failed')"
        " AND scheduled_at <= now() + interval '1 hour'"
    )


async def shape(backend: PostgresBackend, label: str, rounds: int) -> None:
    pool = backend._pool
    assert pool is not None
    await pool.execute(f"VACUUM ANALYZE {backend.qualified_table}")
    for ready in (5, 5000):
        await reset_ready(backend)
        claim, due = await time_claims(backend, ready, rounds)
        naive = await time_naive(backend, rounds)
        case = "trickle (5 ready)   " if ready == 5 else "backlog (5000 ready)"
        print(f"{label:<34} {case}  claim: {claim}   due query: {due}")
        print(f"{'':<34} {'':<20}  plain single-scan claim: {naive}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("QUEUEKIT_TEST_POSTGRES_DSN"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("pass --dsn or set QUEUEKIT_TEST_POSTGRES_DSN")
    schema = f"bench_{secrets.token_hex(4)}"
    backend = PostgresBackend(args.dsn, schema=schema)
    await backend.open()
    pool = backend._pool
    assert pool is not None
    jobs = backend.qualified_table
    try:
        await shape(backend, "empty table", args.rounds)

        started = time.perf_counter()
        await pool.execute(
            f"""INSERT INTO {jobs} (id, queue, type, payload, priority, status, max_attempts,
                                   created_at, scheduled_at, started_at, finished_at)
                SELECT 'done-' || g, 'default', 't', '{{}}', 10, 'completed', 3,
                       now() - interval '1 hour', now() - interval '1 hour',
                       now() - interval '1 hour', now() - interval '59 minutes'
                FROM generate_series(1, $1) AS g""",
            args.rows,
        )
        print(f"(inserted {args.rows:,} completed rows in {time.perf_counter() - started:.1f} s)")
        await shape(backend, f"+{args.rows:,} completed", args.rounds)

        started = time.perf_counter()
        await pool.execute(
            f"""INSERT INTO {jobs} (id, queue, type, payload, priority, status, max_attempts,
                                   created_at, scheduled_at)
                SELECT 'later-' || g, 'default', 't', '{{}}',
                       CASE WHEN g % 2 = 0 THEN 10 ELSE 20 END, 'pending', 3,
                       now(), now() + interval '1 day' + g * interval '1 second'
                FROM generate_series(1, $1) AS g""",
            args.rows,
        )
        print(
            f"(inserted {args.rows:,} pending rows due tomorrow, half at a higher priority, "
            f"in {time.perf_counter() - started:.1f} s)"
        )
        await shape(backend, f"+{args.rows:,} completed, +{args.rows:,} future", args.rounds)
    finally:
        await backend.close()
        conn = await asyncpg.connect(args.dsn)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())

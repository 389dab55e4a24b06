"""Drain rate of the PostgreSQL backend: 20,000 no-op jobs, claim(limit=10) + complete.

    QUEUEKIT_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/postgres_drain.py [--jobs 20000] [--coroutines 10]

One process, one backend, `--coroutines` concurrent loops that each claim up to 10 jobs and
complete them all concurrently (completions are batched by the backend), until the queue is
empty. Drives the backend directly (no worker). Works in a throwaway schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time

import asyncpg

import queuekit
from queuekit.backends.postgres import PostgresBackend


async def drain(backend: PostgresBackend, coroutines: int, limit: int) -> int:
    done = 0

    async def loop(name: str) -> None:
        nonlocal done
        while True:
            jobs = await backend.claim({"default": limit}, limit=limit, lease=60, worker_id=name)
            if not jobs:
                return
            results = await asyncio.gather(*(backend.complete(job.attempt) for job in jobs))
            assert all(results)
            done += len(jobs)

    await asyncio.gather(*(loop(f"w{n}") for n in range(coroutines)))
    return done


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("QUEUEKIT_TEST_POSTGRES_DSN"))
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--coroutines", type=int, default=10)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--batch-window", type=float, default=0.0, help="seconds")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("pass --dsn or set QUEUEKIT_TEST_POSTGRES_DSN")
    schema = f"bench_{secrets.token_hex(4)}"
    backend = PostgresBackend(
        args.dsn, schema=schema, max_pool_size=args.coroutines + 2, batch_window=args.batch_window
    )
    await backend.open()
    try:
        started = time.perf_counter()
        for start in range(0, args.jobs, 5000):
            count = min(5000, args.jobs - start)
            await backend.enqueue_many([queuekit.new_job("noop") for _ in range(count)])
        enqueued = time.perf_counter() - started
        print(f"enqueued {args.jobs:,} jobs in {enqueued:.2f} s ({args.jobs / enqueued:,.0f}/s)")

        batches_before = backend.finish_batches
        started = time.perf_counter()
        done = await drain(backend, args.coroutines, args.limit)
        elapsed = time.perf_counter() - started
        batches = backend.finish_batches - batches_before
        print(
            f"drained {done:,} jobs in {elapsed:.2f} s: {done / elapsed:,.0f} jobs/s "
            f"({args.coroutines} coroutines, claim limit {args.limit}, "
            f"{batches:,} completion statements, {done / max(batches, 1):.1f} per statement)"
        )
        assert done == args.jobs, f"drained {done}, expected {args.jobs}"
    finally:
        await backend.close()
        conn = await asyncpg.connect(args.dsn)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())

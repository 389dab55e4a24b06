"""Drain rate of the Redis backend: enqueue no-op jobs, then claim and complete them.

    .venv/bin/python benchmarks/redis_drain.py [--url redis://127.0.0.1:6379/0] [--jobs 20000]

One process, `--coroutines` coroutines each looping claim(limit=10) then complete() per job;
the backend is driven directly (no worker). Keys live under a fresh prefix, deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time

import redis.asyncio as aioredis

import queuekit
from queuekit.backends.redis import RedisBackend


async def drain(url: str, jobs: int, coroutines: int, batch: int) -> None:
    prefix = f"bench_{secrets.token_hex(4)}"
    sep = "&" if "?" in url else "?"
    backend = RedisBackend(f"{url}{sep}queuekit_prefix={prefix}")
    await backend.open()
    try:
        queue = queuekit.Queue(backend)
        started = time.perf_counter()
        for start in range(0, jobs, 1000):
            await queue.enqueue_many(
                queuekit.new_job("noop") for _ in range(min(1000, jobs - start))
            )
        enqueued = time.perf_counter() - started
        print(f"enqueued {jobs} jobs in {enqueued:.2f} s: {jobs / enqueued:,.0f} jobs/s")

        done = 0

        async def worker(name: str) -> None:
            nonlocal done
            while claimed := await backend.claim(
                {"default": batch}, limit=batch, lease=30, worker_id=name
            ):
                for job in claimed:
                    assert await backend.complete(job.attempt)
                done += len(claimed)

        started = time.perf_counter()
        await asyncio.gather(*(worker(f"w{n}") for n in range(coroutines)))
        drained = time.perf_counter() - started
        assert done == jobs, f"completed {done} of {jobs}"
        print(
            f"drained {jobs} jobs in {drained:.2f} s with {coroutines} coroutines, "
            f"claim(limit={batch}) + complete: {jobs / drained:,.0f} jobs/s"
        )
        stats = await queue.stats()
        assert stats.completed == jobs and stats.pending == stats.running == 0
    finally:
        await backend.close()
        client = aioredis.Redis.from_url(url)
        keys = [key async for key in client.scan_iter(match="{" + prefix + "[:}]*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_url = os.environ.get("QUEUEKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    parser.add_argument("--url", default=default_url)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--coroutines", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(drain(args.url, args.jobs, args.coroutines, args.batch))


if __name__ == "__main__":
    main()

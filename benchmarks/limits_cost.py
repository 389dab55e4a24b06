"""What queue limits cost: drains with and without limits, and claims as keys grow, one run.

    .venv/bin/python -m benchmarks.limits_cost [--backends sqlite,postgres,redis]
        [--jobs 5000] [--concurrency 10] [--repeat 3] [--keys 10,1000,100000]

On each backend, in the same run: a worker (one process, `--concurrency` slots) drains
`--jobs` jobs with no limits, then under a queue limit equal to its concurrency, then with the
jobs spread over 1,000 keys of per-key limit 1. Each job awaits one Redis PING, as a real job
awaits a database or an API. The best of `--repeat` drains of each kind is kept and compared
with the unlimited one (the target is at least 80 %). Then, for each count of `--keys`, as
many jobs as keys (one per key) wait under `per_key=1` and one claim of 10 is timed: what a
limited claim costs as the number of keys with ready jobs grows.

Servers: PostgreSQL and Redis from QUEUEKIT_BENCH_POSTGRES_DSN / QUEUEKIT_BENCH_REDIS_URL
(default: the local ones the tests use); each run works in a fresh schema or prefix.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import asyncpg
from redis.asyncio import Redis

import queuekit
from queuekit import Limits

from .ping_job import pinging, tasks

POSTGRES = os.environ.get(
    "QUEUEKIT_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("QUEUEKIT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGET = 0.8
"""A limited drain should keep at least this share of the unlimited one."""


def fresh_url(backend: str, directory: str) -> str:
    """A URL to an empty store of `backend`."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{directory}/{name}.db"
    if backend == "postgres":
        return f"{POSTGRES}?queuekit_schema={name}"
    return f"{REDIS}?queuekit_prefix={name}"


async def discard(url: str) -> None:
    """Drop what a run left on a shared server: its PostgreSQL schema or its Redis keys."""
    if url.startswith("postgresql"):
        schema = url.rsplit("queuekit_schema=", 1)[1]
        connection = await asyncpg.connect(POSTGRES)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await connection.close()
    elif url.startswith("redis"):
        prefix = url.rsplit("queuekit_prefix=", 1)[1]
        client = Redis.from_url(REDIS)
        try:
            async for key in client.scan_iter(match=f"*{prefix}*", count=10_000):
                await client.unlink(key)
        finally:
            await client.aclose()


@dataclass(frozen=True)
class Drain:
    kind: str
    jobs_per_second: float


Setup = Callable[[queuekit.Queue], Awaitable[None]]


async def drain(url: str, jobs: int, concurrency: int, setup: Setup, keys: int) -> float:
    """Jobs per second for one worker to drain `jobs` jobs (keyed over `keys` if not 0)."""
    try:
        return await _drain(url, jobs, concurrency, setup, keys)
    finally:
        await discard(url)


async def _drain(url: str, jobs: int, concurrency: int, setup: Setup, keys: int) -> float:
    async with queuekit.connect(url) as queue:
        await setup(queue)
        for start in range(0, jobs, 1000):
            await queue.enqueue_many(
                queuekit.new_job("call", limit_key=f"k{n % keys}" if keys else None)
                for n in range(start, min(jobs, start + 1000))
            )
        began = time.perf_counter()
        await queuekit.Worker(queue, tasks, concurrency=concurrency).run_until_empty()
        elapsed = time.perf_counter() - began
        stats = await queue.stats("default")
        assert stats.completed == jobs, f"{stats.completed} of {jobs} jobs completed"
    return jobs / elapsed


async def drains(backend: str, jobs: int, concurrency: int, repeat: int) -> list[Drain]:
    async def unlimited(queue: queuekit.Queue) -> None:
        pass

    async def global_limit(queue: queuekit.Queue) -> None:
        await queue.set_limits("default", Limits(concurrency=concurrency))

    async def per_key(queue: queuekit.Queue) -> None:
        await queue.set_limits("default", Limits(per_key=1))

    kinds: list[tuple[str, Setup, int]] = [
        ("unlimited", unlimited, 0),
        (f"concurrency={concurrency}", global_limit, 0),
        ("1,000 keys, per_key=1", per_key, 1000),
    ]
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(repeat):
            for kind, setup, keys in kinds:
                url = fresh_url(backend, directory)
                rate = await drain(url, jobs, concurrency, setup, keys)
                best[kind] = max(best.get(kind, 0.0), rate)
    return [Drain(kind, rate) for kind, rate in best.items()]


async def claim_cost(backend: str, keys: int, samples: int = 20) -> float:
    """Median milliseconds of one claim of 10 with `keys` keys waiting under per_key=1."""
    with tempfile.TemporaryDirectory() as directory:
        url = fresh_url(backend, directory)
        try:
            return await _claim_cost(url, keys, samples)
        finally:
            await discard(url)


async def _claim_cost(url: str, keys: int, samples: int) -> float:
    async with queuekit.connect(url) as queue:
        await queue.set_limits("default", Limits(per_key=1))
        for start in range(0, keys, 5000):
            await queue.enqueue_many(
                queuekit.new_job("call", limit_key=f"k{n}")
                for n in range(start, min(keys, start + 5000))
            )
        timings = []
        for _ in range(samples):
            began = time.perf_counter()
            claimed = await queue.backend.claim(
                {"default": 10}, limit=10, lease=60, worker_id="bench"
            )
            timings.append(time.perf_counter() - began)
            for job in claimed:
                await queue.backend.complete(job.attempt)
        return statistics.median(timings) * 1000


async def measure(
    backends: list[str], jobs: int, concurrency: int, repeat: int, key_counts: list[int]
) -> dict[str, tuple[list[Drain], dict[int, float]]]:
    async with pinging(Redis.from_url(REDIS)):
        return {
            backend: (
                await drains(backend, jobs, concurrency, repeat),
                {keys: await claim_cost(backend, keys) for keys in key_counts},
            )
            for backend in backends
        }


def report(results: dict[str, tuple[list[Drain], dict[int, float]]]) -> str:
    lines = [
        "| backend | drain | jobs/s | vs unlimited |",
        "|---|---|---:|---:|",
    ]
    for backend, (measured, _) in results.items():
        unlimited = measured[0].jobs_per_second
        for entry in measured:
            ratio = entry.jobs_per_second / unlimited
            mark = "" if ratio >= TARGET or entry is measured[0] else " (below the 80 % target)"
            lines.append(
                f"| {backend} | {entry.kind} | {entry.jobs_per_second:,.0f} | {ratio:.2f}×{mark} |"
            )
    lines += ["", "| backend | keys waiting | one claim of 10 (ms, median) |", "|---|---:|---:|"]
    for backend, (_, costs) in results.items():
        for keys, ms in costs.items():
            lines.append(f"| {backend} | {keys:,} | {ms:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres,redis")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keys", default="10,1000,100000")
    args = parser.parse_args()
    results = anyio.run(
        measure,
        args.backends.split(","),
        args.jobs,
        args.concurrency,
        args.repeat,
        [int(keys) for keys in args.keys.split(",")],
    )
    print(report(results))


if __name__ == "__main__":
    main()

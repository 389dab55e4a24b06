"""Drain rate and enqueue-to-start latency of one queuekit worker, on any backend.

Usage: python benchmarks/worker_drain.py URL [JOBS] [CONCURRENCY]
  e.g. python benchmarks/worker_drain.py sqlite:////tmp/bench.db 20000 10

Drain: JOBS no-op jobs are enqueued first, then one worker runs them; jobs/s is counted
from the worker's start to the last completion. Latency: with the worker idle, 200 jobs are
enqueued 10 ms apart, each recording when its handler started.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

import queuekit
from queuekit import JobStatus, Tasks, Worker

tasks = Tasks()
started_at: dict[int, float] = {}
PROBES = 200
all_started = asyncio.Event()


@tasks.task()
async def noop() -> None:
    pass


@tasks.task()
async def probe(n: int) -> None:
    started_at[n] = time.perf_counter()
    if len(started_at) == PROBES:
        all_started.set()


async def clear(queue: queuekit.Queue) -> None:
    for status in (JobStatus.COMPLETED, JobStatus.PENDING, JobStatus.DEAD, JobStatus.FAILED):
        await queue.purge("default", status)


async def main(url: str, total: int, concurrency: int) -> None:
    async with queuekit.connect(url) as queue:
        await clear(queue)
        for start in range(0, total, 1000):
            await queue.enqueue_many(
                queuekit.new_job("noop") for _ in range(start, min(total, start + 1000))
            )
        worker = Worker(queue, tasks, concurrency=concurrency, poll_interval=1.0)
        began = time.perf_counter()
        ran = await worker.run_until_empty()
        elapsed = time.perf_counter() - began
        stats = await queue.stats()
        assert ran == total and stats.completed == total, (ran, stats)
        print(f"drain: {total} jobs, concurrency {concurrency}: {total / elapsed:,.0f} jobs/s")

        await clear(queue)
        enqueued_at: dict[int, float] = {}
        async with Worker(queue, tasks, concurrency=concurrency, poll_interval=1.0):
            await asyncio.sleep(0.2)
            for n in range(PROBES):
                enqueued_at[n] = time.perf_counter()
                await probe.enqueue(queue, n)
                await asyncio.sleep(0.01)
            await all_started.wait()
        latencies = sorted((started_at[n] - enqueued_at[n]) * 1000 for n in range(PROBES))
        p50 = statistics.median(latencies)
        p95, p99 = latencies[int(0.95 * PROBES) - 1], latencies[int(0.99 * PROBES) - 1]
        print(f"enqueue-to-start latency: p50 {p50:.2f} ms, p95 {p95:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            args[0], int(args[1]) if len(args) > 1 else 20000, int(args[2]) if len(args) > 2 else 10
        )
    )

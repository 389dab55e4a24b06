"""How cost grows: claims, drains and `stats` as the backlog, the queues a worker serves and
the delayed jobs grow, in one run.

    .venv/bin/python -m benchmarks.cost_curves [--backends sqlite,postgres,redis]
        [--backlogs 0,100000,1000000] [--queues 1,100,10000] [--delayed 1000000]
        [--jobs 2000] [--concurrency 10]

Each point starts on a fresh store, filled by `enqueue_many` calls of 10,000 jobs:
- backlog: that many jobs ready in the queue the worker serves (plus the ones measured);
- queues: `--jobs` jobs spread over that many queues, all of which the worker serves;
- delayed: that many jobs due in a day, beside `--jobs` ready ones.
Then, in order: `stats` (median ms of 5 calls), a claim of 10 (median ms of 20, each claim's
jobs completed before the next), and a drain: one worker (one process, `--concurrency` slots)
runs `--jobs` jobs, each awaiting one Redis PING, as a real job awaits a database or an API;
jobs/s until the last of them completes, or of those done within a minute. A flat curve is
the aim: a claim, a drain or `stats` that slows as the store grows shows a cost that grows
with it. Servers as in `benchmarks.limits_cost`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import anyio
from redis.asyncio import Redis

import queuekit

from .limits_cost import REDIS, discard, fresh_url
from .ping_job import ping, pinging

FILL_CALL = 10_000
"""Jobs per `enqueue_many` while filling."""
CLAIMS = 20
STATS_CALLS = 5
DRAIN_SECONDS = 60.0
"""A drain ends after this long, counting the jobs done by then: a worker on 10,000 SQLite
queues runs about one job a second, and all `--jobs` would take most of an hour."""

tasks = queuekit.Tasks()


class Countdown:
    """Set once `left` more jobs have run."""

    def __init__(self, left: int) -> None:
        self.left = left
        self.done = anyio.Event()

    def count(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done.set()


_countdown: Countdown | None = None
"""The drain under way's."""


@tasks.task()
async def measured() -> None:
    await ping()
    if _countdown is not None:
        _countdown.count()


@dataclass(frozen=True)
class Point:
    curve: str
    """backlog, queues or delayed."""
    size: int
    stats_ms: float
    claim_ms: float
    drain_per_second: float


Fill = Callable[[queuekit.Queue], Awaitable[list[str]]]
"""Fills a fresh store; returns the queues the worker serves."""


async def _fill(queue: queuekit.Queue, count: int, delay: timedelta | None = None) -> None:
    for start in range(0, count, FILL_CALL):
        await queue.enqueue_many(
            queuekit.new_job("measured", delay=delay) for _ in range(min(FILL_CALL, count - start))
        )


def backlog(size: int, jobs: int) -> Fill:
    async def fill(queue: queuekit.Queue) -> list[str]:
        await _fill(queue, size + jobs + 10 * CLAIMS)
        return ["default"]

    return fill


def queues(size: int, jobs: int) -> Fill:
    names = [f"q{n}" for n in range(size)]

    async def fill(queue: queuekit.Queue) -> list[str]:
        count = jobs + 10 * CLAIMS
        for start in range(0, count, FILL_CALL):
            await queue.enqueue_many(
                queuekit.new_job("measured", queue=names[n % size])
                for n in range(start, min(count, start + FILL_CALL))
            )
        return names

    return fill


def delayed(size: int, jobs: int) -> Fill:
    async def fill(queue: queuekit.Queue) -> list[str]:
        await _fill(queue, size, delay=timedelta(days=1))
        await _fill(queue, jobs + 10 * CLAIMS)
        return ["default"]

    return fill


async def point(
    backend: str, curve: str, size: int, fill: Fill, jobs: int, concurrency: int
) -> Point:
    with tempfile.TemporaryDirectory() as directory:
        url = fresh_url(backend, directory)
        try:
            async with queuekit.connect(url) as queue:
                served = await fill(queue)
                stats_ms = await _stats_ms(queue, served[0])
                claim_ms = await _claim_ms(queue, served)
                rate = await _drain(queue, served, jobs, concurrency)
        finally:
            await discard(url)
    return Point(curve, size, stats_ms, claim_ms, rate)


async def _stats_ms(queue: queuekit.Queue, name: str) -> float:
    timings = []
    for _ in range(STATS_CALLS):
        began = time.perf_counter()
        await queue.stats(name)
        timings.append(time.perf_counter() - began)
    return statistics.median(timings) * 1000


async def _claim_ms(queue: queuekit.Queue, served: list[str]) -> float:
    timings = []
    for _ in range(CLAIMS):
        began = time.perf_counter()
        claimed = await queue.backend.claim(
            dict.fromkeys(served, 10), limit=10, lease=60, worker_id="bench"
        )
        timings.append(time.perf_counter() - began)
        for job in claimed:
            await queue.backend.complete(job.attempt)
    return statistics.median(timings) * 1000


async def _drain(queue: queuekit.Queue, served: list[str], jobs: int, concurrency: int) -> float:
    """Jobs/s of one worker until `jobs` of them completed, or `DRAIN_SECONDS` passed; then it
    stops."""
    global _countdown
    _countdown = countdown = Countdown(jobs)
    worker = queuekit.Worker(queue, tasks, queues=served, concurrency=concurrency)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(worker.run)
            began = time.perf_counter()
            with anyio.move_on_after(DRAIN_SECONDS):
                await countdown.done.wait()
            elapsed = time.perf_counter() - began
            worker.stop()
    finally:
        _countdown = None
    return (jobs - countdown.left) / elapsed


async def measure(
    backends: list[str],
    curves: dict[str, list[int]],
    jobs: int,
    concurrency: int,
    on_point: Callable[[str, Point], None] = lambda backend, point: None,
) -> dict[str, list[Point]]:
    """Every point of `curves` on each backend, each given to `on_point` as it is measured."""
    makers = {"backlog": backlog, "queues": queues, "delayed": delayed}
    results: dict[str, list[Point]] = {}
    async with pinging(Redis.from_url(REDIS)):
        for backend in backends:
            results[backend] = []
            for curve, sizes in curves.items():
                for size in sizes:
                    fill = makers[curve](size, jobs)
                    measured = await point(backend, curve, size, fill, jobs, concurrency)
                    results[backend].append(measured)
                    on_point(backend, measured)
    return results


HEADER = [
    "| backend | curve | size | `stats` (ms) | claim of 10 (ms) | drain (jobs/s) |",
    "|---|---|---:|---:|---:|---:|",
]


def row(backend: str, p: Point) -> str:
    return (
        f"| {backend} | {p.curve} | {p.size:,} | {p.stats_ms:.1f} | {p.claim_ms:.2f} "
        f"| {p.drain_per_second:,.0f} |"
    )


def report(results: dict[str, list[Point]]) -> str:
    lines = HEADER + [row(backend, p) for backend, points in results.items() for p in points]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres,redis")
    parser.add_argument("--backlogs", default="0,100000,1000000")
    parser.add_argument("--queues", default="1,100,10000")
    parser.add_argument("--delayed", default="1000000")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()

    def sizes(text: str) -> list[int]:
        return [int(size) for size in text.split(",") if size]

    curves = {
        "backlog": sizes(args.backlogs),
        "queues": sizes(args.queues),
        "delayed": sizes(args.delayed),
    }
    # Each row as it is measured: a point on a big store may take minutes.
    print("\n".join(HEADER), flush=True)
    anyio.run(
        measure,
        args.backends.split(","),
        curves,
        args.jobs,
        args.concurrency,
        lambda backend, p: print(row(backend, p), flush=True),
    )


if __name__ == "__main__":
    main()

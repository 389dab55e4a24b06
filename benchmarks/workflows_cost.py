"""What a workflow costs: a fan-out/fan-in against as many independent jobs, in one run.

    .venv/bin/python -m benchmarks.workflows_cost [--backends memory,sqlite,postgres,redis]
        [--jobs 10000] [--concurrency 10] [--repeat 3]

On each backend, in the same run: `--jobs` independent jobs, then one workflow of as many
jobs (a root, `--jobs` - 2 jobs after it, and one job after all of those), each enqueued in
one `enqueue_many` call and drained by one worker (one process, `--concurrency` slots). Each
job awaits one Redis PING, as a real job awaits a database or an API. The best of `--repeat`
of each is kept; the target is a workflow within 25 % of the independent jobs (enqueue and
drain). Servers as in `benchmarks.limits_cost`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from redis.asyncio import Redis

import queuekit

from .limits_cost import REDIS, discard, fresh_url
from .ping_job import pinging, tasks

TARGET = 1.25
"""A workflow may take at most this many times as long as independent jobs."""


def independent(jobs: int) -> list[queuekit.NewJob]:
    return [queuekit.new_job("call") for _ in range(jobs)]


def fan_out_fan_in(jobs: int) -> list[queuekit.NewJob]:
    """A root, `jobs` - 2 jobs after it, one job after all of those."""
    root = queuekit.new_job("call")
    fan = [queuekit.new_job("call", after=[root]) for _ in range(jobs - 2)]
    return [root, *fan, queuekit.new_job("call", after=fan)]


Shape = Callable[[int], list[queuekit.NewJob]]


@dataclass(frozen=True)
class Timing:
    enqueue: float
    """Seconds for the one `enqueue_many` call."""
    drain: float
    """Seconds for one worker to run every job."""


async def timed(url: str, shape: Shape, jobs: int, concurrency: int) -> Timing:
    try:
        async with queuekit.connect(url) as queue:
            requests = shape(jobs)
            began = time.perf_counter()
            await queue.enqueue_many(requests)
            enqueued = time.perf_counter()
            await queuekit.Worker(queue, tasks, concurrency=concurrency).run_until_empty()
            drained = time.perf_counter()
            stats = await queue.stats("default")
            assert stats.completed == jobs, f"{stats.completed} of {jobs} jobs completed"
        return Timing(enqueued - began, drained - enqueued)
    finally:
        await discard(url)


async def compare(backend: str, jobs: int, concurrency: int, repeat: int) -> dict[str, Timing]:
    """The best enqueue and drain of each shape on `backend`."""
    shapes: dict[str, Shape] = {"independent": independent, "fan-out/fan-in": fan_out_fan_in}
    best: dict[str, Timing] = {}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(repeat):
            for name, shape in shapes.items():
                timing = await timed(fresh_url(backend, directory), shape, jobs, concurrency)
                previous = best.get(name, timing)
                best[name] = Timing(
                    min(previous.enqueue, timing.enqueue), min(previous.drain, timing.drain)
                )
    return best


async def measure(
    backends: list[str], jobs: int, concurrency: int, repeat: int
) -> dict[str, dict[str, Timing]]:
    async with pinging(Redis.from_url(REDIS)):
        return {backend: await compare(backend, jobs, concurrency, repeat) for backend in backends}


def report(results: dict[str, dict[str, Timing]], jobs: int) -> str:
    lines = [
        "| backend | jobs | enqueue (s) | vs independent | drain (jobs/s) | vs independent |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for backend, timings in results.items():
        base = timings["independent"]
        for name, timing in timings.items():
            enqueue_ratio, drain_ratio = timing.enqueue / base.enqueue, timing.drain / base.drain
            over = " (over the 25 % target)"
            lines.append(
                f"| {backend} | {name} | {timing.enqueue:.2f} | {enqueue_ratio:.2f}×"
                f"{over if enqueue_ratio > TARGET else ''} | {jobs / timing.drain:,.0f} | "
                f"{drain_ratio:.2f}× the time{over if drain_ratio > TARGET else ''} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="memory,sqlite,postgres,redis")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    backends = args.backends.split(",")
    results = anyio.run(measure, backends, args.jobs, args.concurrency, args.repeat)
    print(report(results, args.jobs))


if __name__ == "__main__":
    main()

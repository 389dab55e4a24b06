"""A worker with a schedule in its own OS process, for the multi-process scheduler test.

Usage: python -m tests.scheduler.process_scheduler URL PERIOD START_AT END_AT
It waits until the wall clock reads START_AT (Unix seconds), runs a `Worker` that both fires
the schedule and runs its jobs, and stops at END_AT.
"""

from __future__ import annotations

import sys
import time

import anyio

import queuekit

tasks = queuekit.Tasks()


@tasks.task()
async def tick() -> None:
    return None


def schedule(period: float) -> queuekit.Schedule:
    return queuekit.Schedule.every(period, name="tick").job(tick)


async def main(url: str, period: float, start_at: float, end_at: float) -> None:
    async with queuekit.connect(url) as queue:
        await anyio.sleep(max(0.0, start_at - time.time()))
        worker = queuekit.Worker(
            queue, tasks, schedules=[schedule(period)], poll_interval=0.05, concurrency=2
        )
        async with worker:
            await anyio.sleep(max(0.0, end_at - time.time()))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))

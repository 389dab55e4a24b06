"""A worker with a schedule in its own OS process, for the multi-process scheduler test.

Usage: python -m tests.scheduler.process_scheduler URL PERIOD READY_FILE
It runs a `Worker` that both fires the schedule and runs its jobs, creates READY_FILE once the
worker runs, and stops when its stdin closes.
"""

from __future__ import annotations

import sys

import anyio

import queuekit

tasks = queuekit.Tasks()


@tasks.task()
async def tick() -> None:
    return None


def schedule(period: float) -> queuekit.Schedule:
    return queuekit.Schedule.every(period, name="tick").job(tick)


async def main(url: str, period: float, ready_file: str) -> None:
    async with queuekit.connect(url) as queue:
        worker = queuekit.Worker(
            queue, tasks, schedules=[schedule(period)], poll_interval=0.05, concurrency=2
        )
        async with worker:
            await anyio.Path(ready_file).touch()
            await anyio.to_thread.run_sync(sys.stdin.read)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], float(sys.argv[2]), sys.argv[3])

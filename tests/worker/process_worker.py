"""A worker in its own OS process, for the kill and signal tests.

Usage: python -m tests.worker.process_worker URL RECORD_FILE LEASE CONCURRENCY
Each attempt appends "start <job id>" and "end <job id>" lines to RECORD_FILE; attempts of
`keyed` append "start <job id> <limit key> <monotonic time> <pid>" and the same for "end".
"""

from __future__ import annotations

import os
import sys
import time

import anyio

import queuekit

tasks = queuekit.Tasks()


def record(event: str, *more: object) -> None:
    # One write of one short line with O_APPEND: lines from many processes never interleave.
    context = queuekit.current_job()
    line = " ".join(map(str, (event, context.job.id, *more))).encode() + b"\n"
    fd = os.open(context.state["record"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@tasks.task()
async def sleepy(seconds: float) -> None:
    record("start")
    await anyio.sleep(seconds)
    record("end")


@tasks.task(limit_key="account")
async def keyed(seconds: float, account: str) -> None:
    # CLOCK_MONOTONIC is one clock for every process of the machine.
    record("start", account, time.monotonic(), os.getpid())
    await anyio.sleep(seconds)
    record("end", account, time.monotonic(), os.getpid())


async def main(url: str, record_file: str, lease: float, concurrency: int) -> None:
    async with queuekit.connect(url) as queue:
        worker = queuekit.Worker(
            queue,
            tasks,
            lease=lease,
            concurrency=concurrency,
            poll_interval=0.1,
            rescue_interval=lease,
            shutdown_timeout=10,
            state={"record": record_file},
        )
        await worker.run()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))

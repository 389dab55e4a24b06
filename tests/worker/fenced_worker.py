"""A worker that holds its job until told to let go, for the fencing tests; also a process.

Usage: python -m tests.worker.fenced_worker URL FOLDER NAME LEASE
As a process it takes one job, stops claiming, and exits once that attempt has ended.
Every worker of the test appends "<event> <name>" lines to FOLDER/events.log: "start" when
its handler starts, "end" when it returns NAME (once FOLDER/release-NAME exists), "stopped"
when it is cancelled, and "outcome <name> <outcome>" after the attempt.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

import queuekit
from queuekit.context import JobContext
from queuekit.worker import JobReport

tasks = queuekit.Tasks()


def record(state: dict[str, str], event: str) -> None:
    # One write of one short line with O_APPEND: lines from many processes never interleave.
    line = f"{event}\n".encode()
    fd = os.open(Path(state["folder"], "events.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@tasks.task()
async def hold() -> str:
    state = queuekit.current_job().state
    name = state["name"]
    record(state, f"start {name}")
    try:
        while not await anyio.Path(state["folder"], f"release-{name}").exists():
            await anyio.sleep(0.01)
    except anyio.get_cancelled_exc_class():
        record(state, f"stopped {name}")
        raise
    record(state, f"end {name}")
    return str(name)


async def record_outcome(context: JobContext, report: JobReport) -> None:
    record(context.state, f"outcome {context.state['name']} {report.outcome}")


def fenced_worker(queue: queuekit.Queue, folder: Path, name: str, lease: float) -> queuekit.Worker:
    """A worker running one `hold` job at a time, recording as `name`."""
    return queuekit.Worker(
        queue,
        tasks,
        concurrency=1,
        lease=lease,
        poll_interval=0.05,
        rescue_interval=lease,
        shutdown_timeout=120,
        state={"folder": str(folder), "name": name},
        after_job=[record_outcome],
        worker_id=name,
    )


async def main(url: str, folder: str, name: str, lease: float) -> None:
    async with queuekit.connect(url) as queue:
        worker = fenced_worker(queue, Path(folder), name, lease)

        async def take_one_job(context: JobContext) -> None:
            worker.stop()  # the attempt still runs, and still heartbeats, to its end

        worker.before_job.append(take_one_job)
        await worker.run()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))

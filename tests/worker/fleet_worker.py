"""The fleet test's worker processes: forked from one launcher, each a Worker on 1,000 queues.

Usage: python -m tests.worker.fleet_worker URL DIRECTORY WORKERS CONCURRENCY POLL_INTERVAL
Imports once, then forks WORKERS processes (twenty interpreters importing queuekit each would
take seconds of the two cores); SIGTERM or SIGINT is passed on to them, and the launcher exits
0 once all of them exited 0. Worker n appends one line per event to DIRECTORY/worker-<n>.log:
"pid <pid>" first; "wait" just before each idle wait for work and "woke" after it;
"start <job id> <wave> held|free <pid>" and "end <job id> <wave> <pid>" around each run of
`wave_job`, which holds its slot until DIRECTORY/open-<wave> exists ("held": it started
before that).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Sequence
from pathlib import Path
from types import FrameType

import anyio

import queuekit
from queuekit import Backend
from queuekit.backends.postgres import PostgresBackend
from queuekit.backends.redis import RedisBackend

QUEUES = [f"q{n:04d}" for n in range(1000)]
GATE_POLL = 0.02
"""Seconds between a held job's looks at its gate: 100 held jobs looking cost little CPU."""

tasks = queuekit.Tasks()
_output: list[int] = []
"""This worker's log file, opened with O_APPEND (by `serve`)."""


def record(*words: object) -> None:
    # Unbuffered, one write a line: the test sees each event as soon as it happens.
    os.write(_output[0], " ".join(map(str, words)).encode() + b"\n")


@tasks.task()
async def wave_job(wave: int) -> None:
    """Holds its slot until the wave's gate opens, then awaits briefly, as I/O would."""
    context = queuekit.current_job()
    gate = Path(context.state["directory"]) / f"open-{wave}"
    held = "free" if gate.exists() else "held"
    record("start", context.job.id, wave, held, os.getpid())
    while not gate.exists():
        await anyio.sleep(GATE_POLL)
    await anyio.sleep(0.005)
    record("end", context.job.id, wave, os.getpid())


async def announced(wait: Awaitable[None]) -> None:
    """Say when the worker goes idle and when it wakes, so the test enqueues into idle workers."""
    record("wait")
    try:
        await wait
    finally:
        record("woke")


class FleetPostgresBackend(PostgresBackend):
    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        await announced(super().wait_for_work(queues, timeout))


class FleetRedisBackend(RedisBackend):
    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        await announced(super().wait_for_work(queues, timeout))


def backend_of(url: str) -> Backend:
    if url.startswith("redis"):
        return FleetRedisBackend.from_url(url)
    return FleetPostgresBackend.from_url(url)


async def serve(url: str, directory: str, n: int, concurrency: int, poll_interval: float) -> None:
    path = os.path.join(directory, f"worker-{n}.log")
    _output.append(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT))
    record("pid", os.getpid())
    async with queuekit.connect(backend_of(url)) as queue:
        worker = queuekit.Worker(
            queue,
            tasks,
            queues=QUEUES,
            concurrency=concurrency,
            poll_interval=poll_interval,
            # Nothing here expires: keep the rescuer's 1,000-queue sweeps out of the timings.
            rescue_interval=poll_interval,
            state={"directory": directory},
        )
        await worker.run()


def launch(url: str, directory: str, workers: int, concurrency: int, poll: float) -> int:
    children: list[int] = []
    for n in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                anyio.run(serve, url, directory, n, concurrency, poll)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)

    def pass_on(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            # One that has exited (and been reaped) needs no telling.
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    failed = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"worker pid {child}: exit {os.waitstatus_to_exitcode(status)}", flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    url, directory, workers, concurrency, poll = sys.argv[1:6]
    sys.exit(launch(url, directory, int(workers), int(concurrency), float(poll)))

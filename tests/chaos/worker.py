"""A chaos worker in its own OS process, killed and restarted by `tests.chaos.run`.

Usage: python -m tests.chaos.worker URL RECORD_FILE LEASE CONCURRENCY [RSS_FILE]
Each attempt appends "start <job id> <attempt> <pid> <time>" and, when the handler returns
or raises, "end ..." to RECORD_FILE, so the run can count executions per job. With RSS_FILE,
the process appends "<time> <peak RSS in KiB>" every second.
"""

from __future__ import annotations

import os
import resource
import sys
import time

import anyio

import queuekit

tasks = queuekit.Tasks()
RETRY = queuekit.Fixed(0.2)


def record(event: str) -> None:
    context = queuekit.current_job()
    job = context.job
    line = f"{event} {job.id} {job.attempts} {os.getpid()} {time.time():.3f}\n".encode()
    # One short write with O_APPEND: lines from many processes never interleave.
    fd = os.open(context.state["record"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@tasks.task("work", max_attempts=20, retry=RETRY)
async def work(seconds: float, fail_times: int = 0) -> str:
    """Fails its first `fail_times` attempts (or all of them if that is >= max_attempts)."""
    record("start")
    try:
        await anyio.sleep(seconds)
        if queuekit.current_job().job.attempts <= fail_times:
            raise RuntimeError("planned failure")
        return "ok"
    finally:
        record("end")


@tasks.task("hang", timeout=0.3, retry=RETRY)
async def hang(seconds: float) -> None:
    """Runs past its timeout every time: ends dead after its attempts."""
    record("start")
    try:
        await anyio.sleep(seconds)
    finally:
        record("end")


@tasks.task("poison")
def poison() -> None:
    """Takes its worker process down every time."""
    record("start")
    os._exit(1)


def peak_rss_kib() -> int:
    """This process's peak RSS. VmHWM, as getrusage's ru_maxrss on Linux keeps the peak of
    the parent that forked this process before it exec'd Python."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def report_rss(path: str) -> None:
    while True:
        peak = peak_rss_kib()
        with open(path, "a") as out:  # noqa: ASYNC230 (a tiny local write, once a second)
            out.write(f"{time.time():.3f} {peak}\n")
        await anyio.sleep(1.0)


async def opened(url: str) -> queuekit.Queue:
    """An open queue; a server that is down (restarting) is waited for, as a supervisor would."""
    delay = 0.1
    while True:
        queue = queuekit.connect(url)
        try:
            await queue.open()
        except queuekit.BackendUnavailableError:
            await anyio.sleep(delay)
            delay = min(delay * 2, 2.0)
        else:
            return queue


async def main(url: str, record_file: str, lease: float, concurrency: int, rss: str) -> None:
    queue = await opened(url)
    try:
        await serve(queue, record_file, lease, concurrency, rss)
    finally:
        await queue.close()


async def serve(
    queue: queuekit.Queue, record_file: str, lease: float, concurrency: int, rss: str
) -> None:
    async with anyio.create_task_group() as group:
        if rss:
            group.start_soon(report_rss, rss)
        worker = queuekit.Worker(
            queue,
            tasks,
            lease=lease,
            concurrency=concurrency,
            poll_interval=0.2,
            rescue_interval=lease / 2,
            shutdown_timeout=5,
            state={"record": record_file},
        )
        await worker.run()
        group.cancel_scope.cancel()


if __name__ == "__main__":
    args = sys.argv[1:]
    anyio.run(
        main, args[0], args[1], float(args[2]), int(args[3]), args[4] if len(args) > 4 else ""
    )

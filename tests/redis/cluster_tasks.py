"""The task the Cluster fault tests' `queuekit worker` runs: it logs each run's start and end.

Each line of the file named by $QUEUEKIT_TEST_RUN_LOG is `start|end <job id> <attempt>
<lease token> <pid> <wall time>`, so the test can tell runs of one job apart and see whether
two of them overlapped.
"""

from __future__ import annotations

import os
import time

import anyio

from queuekit import Tasks, current_job

RUN_LOG = "QUEUEKIT_TEST_RUN_LOG"

tasks = Tasks()


def _log(event: str) -> None:
    attempt = current_job().job.attempt
    run = f"{attempt.job_id} {attempt.number} {attempt.token}"
    line = f"{event} {run} {os.getpid()} {time.time()}\n"
    # One O_APPEND write per line: lines of concurrent runs never interleave.
    descriptor = os.open(os.environ[RUN_LOG], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


@tasks.task()
async def double(n: int) -> int:
    _log("start")
    await anyio.sleep(0.05)
    _log("end")
    return 2 * n

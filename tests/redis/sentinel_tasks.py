"""The task the Sentinel failover test's `queuekit worker` runs: slow enough to be mid-job."""

from __future__ import annotations

import anyio

from queuekit import Tasks

tasks = Tasks()


@tasks.task()
async def double(n: int) -> int:
    await anyio.sleep(0.05)
    return 2 * n

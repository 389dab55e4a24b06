"""A worker in its own OS process for the registry tests, beating every 0.5 s (ttl 2.5 s).

Usage: python -m tests.worker.registry_worker URL WORKER_ID
Its task `wait_for_file` runs until the file it names exists.
"""

from __future__ import annotations

import sys

import anyio

import queuekit

tasks = queuekit.Tasks()
INTERVAL = 0.5


@tasks.task()
async def wait_for_file(path: str) -> None:
    while not await anyio.Path(path).exists():
        await anyio.sleep(0.02)


async def main(url: str, worker_id: str) -> None:
    async with queuekit.connect(url) as queue:
        worker = queuekit.Worker(
            queue,
            tasks,
            queues={"registry": 2},
            concurrency=3,
            worker_id=worker_id,
            poll_interval=0.1,
            registry_interval=INTERVAL,
        )
        await worker.run()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])

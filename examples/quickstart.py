"""Quickstart: enqueue a batch of jobs into a durable SQLite queue, process them, print the stats.

Run it with `make demo`, or `python examples/quickstart.py [path/to/jobs.db]`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time

import queuekit
from queuekit import Priority, Retry, Tasks, Worker

tasks = Tasks()


@tasks.task(max_attempts=3, retry=queuekit.Fixed(0.05))
async def resize_image(image_id: int, width: int) -> dict[str, int]:
    await asyncio.sleep(random.uniform(0.001, 0.01))
    if random.random() < 0.05:
        raise OSError(f"image {image_id}: storage timed out")  # retried with backoff
    return {"image_id": image_id, "width": width}


@tasks.task()
async def send_receipt(order_id: int) -> None:
    if random.random() < 0.02:
        raise Retry(after=0.05)  # not ready yet: try again shortly, without using an attempt


async def main(path: str) -> None:
    logging.basicConfig(level=logging.ERROR)  # retries log warnings; keep the demo quiet
    async with queuekit.connect(f"sqlite:///{path}") as queue:
        for name in ("default", "images"):
            for status in ("completed", "dead", "pending", "failed", "cancelled"):
                await queue.purge(name, status)

        total = 1000
        await queue.enqueue_many(
            queuekit.new_job("resize_image", {"image_id": n, "width": 640}, queue="images")
            for n in range(total // 2)
        )
        await queue.enqueue_many(
            queuekit.new_job("send_receipt", {"order_id": n}, priority=Priority.HIGH)
            for n in range(total // 2)
        )
        print(f"enqueued {total} jobs into {path}")

        started = time.monotonic()
        worker = Worker(queue, tasks, queues=["default", "images"], concurrency=20)
        run = asyncio.create_task(worker.run_until_empty())
        while not run.done():
            await asyncio.sleep(0.25)
            print(f"\r  processed {worker.processed} attempts", end="", flush=True)
        await run
        elapsed = time.monotonic() - started
        print(f"\r  processed {worker.processed} attempts in {elapsed:.2f} s")

        for name in ("default", "images"):
            stats = await queue.stats(name)
            print(
                f"{name:8} completed={stats.completed} dead={stats.dead} "
                f"pending={stats.pending} failed={stats.failed} health={stats.health}"
            )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "jobs.db"))

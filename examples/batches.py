"""Batches: make thumbnails of a folder's files as one batch; a callback reports once every
file has been tried, reading the batch's counts, and another runs at the first file that fails.

Run it with `python examples/batches.py [URL]` (default: memory://).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import queuekit
from queuekit import Tasks, Worker, batch, current_job

tasks = Tasks()
FILES = [f"photo-{n:02}.jpg" for n in range(1, 11)] + ["notes.txt"]


@tasks.task(max_attempts=1)
async def thumbnail(name: str) -> str:
    if not name.endswith(".jpg"):
        raise ValueError(f"{name} is not an image")
    return f"thumbs/{name}"


@tasks.task()
async def report(folder: str) -> str:
    counts = await current_job().batch()  # the batch's jobs by state, read now
    return f"{folder}: {counts.completed} of {counts.total} thumbnails made, {counts.dead} failed"


@tasks.task()
async def alert(folder: str) -> str:
    # Runs at the first dead job, while the others may still be running: it does not wait.
    return f"{folder}: a file could not be made a thumbnail"


async def main(url: str) -> None:
    logging.basicConfig(level=logging.CRITICAL)  # a failed attempt logs its error; keep it quiet
    async with queuekit.connect(url) as queue:
        folder = "holiday"
        flow = batch(
            *(thumbnail.step(name) for name in FILES),
            on_finish=report.step(folder),  # once every file has been tried, however it ended
            on_dead=alert.step(folder),  # at the first file that fails for good
        )
        jobs = await queue.enqueue_many(flow)  # one round trip: the files, then the callbacks
        print(f"enqueued batch {flow.id}: {len(FILES)} jobs and 2 callbacks")

        await Worker(queue, tasks, concurrency=4).run_until_empty()
        on_finish, on_dead = jobs[-2:]
        print(await report.result(queue, on_finish))
        print(await alert.result(queue, on_dead))
        counts = await queue.batch_counts(flow.id)
        print(f"completed={counts.completed} dead={counts.dead} total={counts.total}")
        dead = await queue.list_jobs(batch_id=flow.id, status="dead")
        print("dead:", ", ".join(job.payload["name"] for job in dead.jobs))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory://"))

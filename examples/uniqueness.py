"""Unique keys and debounce: a daily digest sent once per account per day, however often it is
asked for; and a shop's search index rebuilt once after a burst of changes, with the last one.

Run it with `python examples/uniqueness.py [URL]` (default: memory://).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

import queuekit
from queuekit import Queue, Tasks, Worker

tasks = Tasks()
sent: list[str] = []


@tasks.task()
async def send_digest(account: str, day: str) -> str:
    sent.append(account)
    return f"digest of {day} sent to {account}"


@tasks.task()
async def reindex(shop: int, change: str) -> str:
    return f"shop {shop} reindexed after {change}"


async def ask_for_digest(queue: Queue, account: str) -> queuekit.Job:
    """Enqueue today's digest of `account`; a digest of that day enqueued before is returned
    instead, done or not, for a day from its enqueue."""
    day = datetime.now(UTC).date().isoformat()
    once_a_day = send_digest.with_options(
        unique_key=f"digest:{account}:{day}", unique_for=timedelta(days=1)
    )
    return await once_a_day.enqueue(queue, account, day)


async def main(url: str) -> None:
    async with queuekit.connect(url) as queue:
        asked = [await ask_for_digest(queue, account) for account in ("ada", "bob", "ada")]
        print(f"3 digests asked for, {len({job.id for job in asked})} jobs stored")
        await Worker(queue, tasks).run_until_empty()
        again = await ask_for_digest(queue, "ada")  # later the same day: the sent one is returned
        print(f"ada asks again: job {again.status}, the same job: {again.id == asked[0].id}")
        await Worker(queue, tasks).run_until_empty()
        print(f"digests sent: {', '.join(sorted(sent))}")

        # Each change pushes the rebuild back to a second after it (at most 10 s after the
        # first change): a burst of changes makes one job, run with the last change.
        debounced = reindex.with_options(debounce_key="reindex:7", delay=1, debounce_max=10)
        burst = [await debounced.enqueue(queue, 7, f"change {n}") for n in range(1, 6)]
        job = burst[-1]
        print(f"5 changes, {len({job.id for job in burst})} job, payload {job.payload}")
        async with Worker(queue, tasks, poll_interval=0.1):
            print(await reindex.result(queue, job, timeout=30))
        later = await debounced.enqueue(queue, 7, "change 6")  # that one has run: a new job
        print(f"a change after it ran: a new job: {later.id != job.id}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory://"))

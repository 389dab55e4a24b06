"""Flow control: two workers share one queue limit, keys take turns, and a 429 holds a tenant.

Run it with `python examples/limits.py [path/to/jobs.db]`.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

import queuekit
from queuekit import Limits, RateLimited, Tasks, Worker

tasks = Tasks()
running: Counter[str] = Counter()
peaks: Counter[str] = Counter()
told_to_slow_down: set[str] = set()


@tasks.task(queue="api", limit_key="tenant")
async def call_api(tenant: str, n: int) -> None:
    running[tenant] += 1
    running["all"] += 1
    peaks[tenant] = max(peaks[tenant], running[tenant])
    peaks["all"] = max(peaks["all"], running["all"])
    try:
        if tenant == "acme" and tenant not in told_to_slow_down:
            told_to_slow_down.add(tenant)  # the API answered 429 once, Retry-After: 0.2
            raise RateLimited(after=0.2)
        await asyncio.sleep(0.01)  # the call itself
    finally:
        running[tenant] -= 1
        running["all"] -= 1


async def main(path: str) -> None:
    async with queuekit.connect(f"sqlite:///{path}") as queue:
        await queue.purge("api", "completed")
        await queue.set_limits("api", Limits(concurrency=4, per_key=2))
        tenants = ["acme", "globex", "initech", "umbrella"]
        jobs = [await call_api.enqueue(queue, tenants[n % 4], n) for n in range(40)]
        # Two workers of 10 slots each: the queue's limit, not their slots, decides.
        async with (
            Worker(queue, tasks, queues=["api"], concurrency=10),
            Worker(queue, tasks, queues=["api"], concurrency=10),
        ):
            for job in jobs:
                await queue.result(job.id, timeout=60)
        stats = await queue.stats("api")
        print(f"api completed={stats.completed} dead={stats.dead}")
        print(f"peak running at once: {peaks['all']} (limit 4)")
        print(f"peak running per tenant: {max(peaks[t] for t in tenants)} (limit 2)")
        print(f"acme was held once and ran again: {'acme' in told_to_slow_down}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "jobs.db"))

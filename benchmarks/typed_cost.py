"""What typed payloads cost: a plain task and a typed one, enqueued and drained in the same run.

    .venv/bin/python -m benchmarks.typed_cost [--jobs 5000] [--repeat 5]

Both tasks run on `memory://`, so the figures are queuekit's own CPU per job: the typed task's
extra is its pydantic validation and encoding at enqueue, and its decoding at run time. Each
handler awaits a checkpoint, as a handler that awaits I/O yields to the loop. The best of
`--repeat` runs of each is reported, plain and typed interleaved.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import anyio
import anyio.lowlevel
import pydantic

import queuekit

tasks = queuekit.Tasks()


class Money(pydantic.BaseModel):
    amount: Decimal
    currency: str


@tasks.task()
async def plain(amount: str, currency: str, at: str) -> dict[str, str]:
    await anyio.lowlevel.checkpoint()
    return {"amount": amount, "currency": currency}


@tasks.task()
async def typed(money: Money, at: datetime) -> Money:
    await anyio.lowlevel.checkpoint()
    return money


Enqueue = Callable[[queuekit.Queue], Awaitable[object]]


async def cost(enqueue: Enqueue, jobs: int) -> tuple[float, float]:
    """CPU µs per job to enqueue `jobs` jobs one by one, then to drain them."""
    async with queuekit.connect("memory://") as queue:
        start = time.process_time()
        for _ in range(jobs):
            await enqueue(queue)
        enqueued = time.process_time()
        await queuekit.Worker(queue, tasks, concurrency=50).run_until_empty()
        drained = time.process_time()
    return (enqueued - start) / jobs * 1e6, (drained - enqueued) / jobs * 1e6


async def measure(jobs: int, repeat: int) -> dict[str, tuple[float, float]]:
    now = datetime.now(UTC)
    money = Money(amount=Decimal("12.50"), currency="EUR")
    shapes: dict[str, Enqueue] = {
        "plain": lambda queue: plain.enqueue(queue, "12.50", "EUR", now.isoformat()),
        "typed": lambda queue: typed.enqueue(queue, money, now),
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in shapes}
    for _ in range(repeat):
        for name, enqueue in shapes.items():
            runs[name].append(await cost(enqueue, jobs))
    return {name: (min(r[0] for r in done), min(r[1] for r in done)) for name, done in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    best = anyio.run(measure, args.jobs, args.repeat)
    print("task  | enqueue (CPU µs/job) | drain (CPU µs/job)")
    for name, (enqueue, drain) in best.items():
        print(f"{name:5} | {enqueue:20.1f} | {drain:18.1f}")


if __name__ == "__main__":
    main()

"""Workflows: ask three suppliers for a quote side by side, pick the cheapest once all have
answered (one may fail: it is left out), then place the order; print each step's outcome.

Run it with `python examples/workflows.py [URL]` (default: sqlite:///workflows.db).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass

import queuekit
from queuekit import OnFailure, ParentResults, Tasks, Worker, chain, chord, current_job

tasks = Tasks()


@dataclass
class Quote:
    supplier: str
    cents: int


PRICES = {"acme": 1250, "globex": 990, "initech": None}  # initech is down today


@tasks.task(max_attempts=1)
async def ask_for_quote(supplier: str, item: str) -> Quote:
    cents = PRICES[supplier]
    if cents is None:
        raise ConnectionError(f"{supplier} did not answer")
    return Quote(supplier, cents)


@tasks.task()
async def pick_cheapest(quotes: ParentResults[Quote] = ()) -> Quote:
    # Every parent's outcome, failures too: the suppliers that failed are logged here.
    for outcome in await current_job().parents():
        if not outcome.completed:
            print(f"  no quote from job {outcome.job_id}: {first_line(outcome.error)}")
    return min(quotes, key=lambda quote: quote.cents)


@tasks.task()
async def place_order(item: str, chosen: ParentResults[Quote] = ()) -> str:
    (quote,) = chosen
    return f"ordered {item} from {quote.supplier} at {quote.cents / 100:.2f}"


def first_line(error: str | None) -> str:
    """An error without its traceback."""
    return (error or "").partition("\n")[0]


async def main(url: str) -> None:
    logging.basicConfig(level=logging.ERROR)  # a failed attempt logs a warning; keep it quiet
    async with queuekit.connect(url) as queue:
        item = "printer paper"
        flow = chain(
            chord(
                [ask_for_quote.step(supplier, item) for supplier in PRICES],
                pick_cheapest.step(),
                on_failure=OnFailure.RUN,  # pick from the quotes that came back
            ),
            place_order.step(item),
        )
        jobs = await queue.enqueue_many(flow)  # one round trip, all or nothing
        print(f"enqueued workflow {flow.id}: {len(jobs)} jobs")

        await Worker(queue, tasks, concurrency=4).run_until_empty()
        for job in jobs:
            done = await queue.get_job(job.id)
            print(f"  {done.type:14} {done.status:9} {done.result or first_line(done.last_error)}")
        print(await place_order.result(queue, jobs[-1]))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///workflows.db"))

"""One step of a benchmark in a process of its own: `python -m benchmarks.drive ROW STEP ...`.

The runner starts this under the venv of the row's library; it needs nothing else installed.
`enqueue` prints `{"seconds": ...}`; `work` says it is ready, waits for the word to go (a line
on stdin), then runs a worker until it is killed; `latency` enqueues jobs spaced apart and writes
when it enqueued each one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .peers import ROWS_BY_KEY, Peer, Servers

BULK_CHUNK = 1000
WARM_UP_JOB = 1_000_000_000
"""The number of the job that wakes a worker before latency is measured; tallies skip it."""
FIRST_ENQUEUE_JOB = WARM_UP_JOB + 1
"""The number of a latency run's first enqueue, untimed; tallies skip it."""
FILL_IN_FLIGHT = 50
WARM_UP_SECONDS = 0.5


async def enqueue_singly(peer: Peer, ns: Sequence[int]) -> None:
    for n in ns:
        await peer.enqueue(n)


async def enqueue_in_bulk(peer: Peer, ns: Sequence[int]) -> None:
    for start in range(0, len(ns), BULK_CHUNK):
        await peer.enqueue_bulk(ns[start : start + BULK_CHUNK])


async def fill(peer: Peer, ns: Sequence[int]) -> None:
    """Enqueue as fast as the library allows: in bulk, or many single enqueues at once."""
    if peer.has_bulk_enqueue:
        await enqueue_in_bulk(peer, ns)
        return
    pending = iter(ns)

    async def enqueue_some() -> None:
        for n in pending:
            await peer.enqueue(n)

    await asyncio.gather(*(enqueue_some() for _ in range(FILL_IN_FLIGHT)))


async def enqueue_spaced(peer: Peer, count: int, spacing: float, out: str) -> None:
    """Enqueue `count` jobs `spacing` seconds apart; write each one's enqueue time to `out`.

    One job goes first, untimed: a process's first enqueue also prepares its statements or
    loads its scripts, a cost of starting up that a service pays once."""
    await peer.enqueue(FIRST_ENQUEUE_JOB)
    await asyncio.sleep(spacing)
    enqueued_ns: dict[int, int] = {}
    for n in range(count):
        enqueued_ns[n] = time.monotonic_ns()
        await peer.enqueue(n)
        await asyncio.sleep(spacing)
    with open(out, "w") as file:
        json.dump(enqueued_ns, file)


async def ready_then_go(ready: str) -> None:
    """Say this process is ready (its library loaded, connected) by creating the file `ready`,
    which holds the monotonic clock, then wait for the runner's word on stdin: it lets every
    worker of a phase go at once, so that a process still starting does not leave the first
    jobs to the others."""
    Path(ready).write_text(str(time.monotonic_ns()))
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def main(args: argparse.Namespace) -> None:
    row = ROWS_BY_KEY[args.row]
    peer = row.load(Servers.from_environment())
    await peer.open()
    try:
        numbers = range(args.first, args.first + args.count)
        if args.step == "enqueue":
            seconds = None
            if args.how != "bulk" or peer.has_bulk_enqueue:
                how = {"single": enqueue_singly, "bulk": enqueue_in_bulk, "fill": fill}[args.how]
                began = time.perf_counter()
                await how(peer, numbers)
                seconds = time.perf_counter() - began
            print(json.dumps({"seconds": seconds}), flush=True)
        elif args.step == "latency":
            await enqueue_spaced(peer, args.count, args.spacing_ms / 1000, args.out)
        elif args.step == "work":
            if row.single_process:
                # The jobs live in this process's memory, so it enqueues its own.
                await fill(peer, numbers)
            await ready_then_go(args.ready)
            worker = asyncio.create_task(peer.work(args.concurrency))
            if args.latency:
                await asyncio.sleep(WARM_UP_SECONDS)
                await enqueue_spaced(peer, args.latency, args.spacing_ms / 1000, args.out)
            await worker
    finally:
        await peer.close()


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drive")
    parser.add_argument("row", choices=sorted(ROWS_BY_KEY))
    parser.add_argument("step", choices=["enqueue", "work", "latency"])
    parser.add_argument("--how", choices=["single", "bulk", "fill"], default="single")
    parser.add_argument("--first", type=int, default=0, help="number of the first job")
    parser.add_argument("--count", type=int, default=0, help="jobs to enqueue")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--latency", type=int, default=0, help="jobs spaced apart (in-memory)")
    parser.add_argument("--spacing-ms", type=float, default=10.0)
    parser.add_argument("--out", default="", help="where `latency` writes enqueue times")
    parser.add_argument("--ready", default="", help="what `work` creates once ready to go")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))

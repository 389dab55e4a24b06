"""`queuekit batch ID`: how many of a batch's jobs are in each state."""

from __future__ import annotations

from dataclasses import asdict

import click

from ..batches import BatchCounts
from .output import echo, print_json
from .shared import Failure, json_option, open_queue, run, url_option


@click.command()
@click.argument("batch_id")
@url_option
@json_option
def batch(batch_id: str, url: str | None, as_json: bool) -> None:
    """How many of a batch's jobs are in each state, read at one moment, and in all
    (`queuekit jobs list --batch ID` lists them)."""
    handle = open_queue(url)

    async def main() -> BatchCounts:
        async with handle:
            return await handle.batch_counts(batch_id)

    counts = run(main)
    if counts.total == 0:
        raise Failure(f"no batch with id {batch_id!r}")
    every = {**asdict(counts), "total": counts.total}
    if as_json:
        print_json(every)
        return
    width = max(len(name) for name in every)
    for name, count in every.items():
        echo(f"{name:<{width}}  {count:,}")

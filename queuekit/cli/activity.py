"""`queuekit activity`: a queue's jobs enqueued and finished, wait and run times and depth, by
minute."""

from __future__ import annotations

import click

from ..activity import MAX_MINUTES, Minute, depths
from ..serialize import activity_dict
from .output import age, echo, print_json, table, terminal_width
from .shared import json_option, open_queue, run, url_option


@click.command()
@url_option
@json_option
@click.argument("queue", default="default")
@click.option(
    "--minutes",
    type=click.IntRange(1, MAX_MINUTES),
    default=60,
    show_default=True,
    help="How many minutes back.",
)
def activity(url: str | None, as_json: bool, queue: str, minutes: int) -> None:
    """Jobs enqueued, completed, failed and dead in QUEUE, the median and 95th percentile of
    their wait (from due to start) and run times, and the queue's depth (ready jobs, sampled
    once a minute; a minute without a sample shows the last one), minute by minute (UTC)."""
    handle = open_queue(url)

    async def main() -> list[Minute]:
        async with handle:
            return await handle.activity(queue, minutes=minutes)

    found = run(main)
    if as_json:
        print_json(activity_dict(queue, found))
    elif not found:
        echo(f"no activity in {queue!r} in the last {minutes} minutes")
    else:
        echo(_table(found))


def _table(minutes: list[Minute]) -> str:
    columns = ["minute", "enqueued", "completed", "failed", "dead"]
    columns += ["wait p50", "wait p95", "run p50", "run p95", "depth"]
    rows = [
        [
            minute.at.strftime("%Y-%m-%d %H:%M"),
            *map(str, (minute.enqueued, minute.completed, minute.failed, minute.dead)),
            *map(_time, (minute.wait_p50, minute.wait_p95, minute.run_p50, minute.run_p95)),
            "—" if depth is None else str(depth),
        ]
        for minute, depth in zip(minutes, depths(minutes), strict=True)
    ]
    return table(columns, rows, width=terminal_width(), optional=["wait p95", "run p95"])


def _time(seconds: float | None) -> str:
    """A wait or run time: milliseconds under a second."""
    if seconds is not None and seconds < 1:
        return f"{seconds * 1000:.1f}ms"
    return age(seconds)


__all__ = ["activity"]

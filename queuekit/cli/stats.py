"""`queuekit stats`: counts, oldest ready job, health and pause state per queue, or a live view."""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

import anyio
import click

from ..serialize import stats_dict
from ..stats import QueueStats
from .output import age, echo, print_json, table, terminal_width
from .shared import json_option, open_queue, run, url_option

Sample = tuple[float, list[QueueStats]]
"""When the stats were read (monotonic seconds), and each queue's."""


@click.command()
@url_option
@json_option
@click.option("--queue", help="One queue (default: every queue).")
@click.option("--watch", is_flag=True, help="Refresh in place, with throughput.")
@click.option("--interval", type=click.FloatRange(0.1), default=2.0, show_default=True)
@click.option("--count", type=click.IntRange(1), help="With --watch: stop after N refreshes.")
def stats(
    url: str | None,
    as_json: bool,
    queue: str | None,
    watch: bool,
    interval: float,
    count: int | None,
) -> None:
    """Counts per state, oldest ready job's age, health and pause state, per queue."""
    show_stats(url, queue, as_json, watch=watch, interval=interval, count=count)


def show_stats(
    url: str | None,
    only: str | None,
    as_json: bool,
    *,
    watch: bool,
    interval: float,
    count: int | None,
) -> None:
    """Print the stats once, or every `interval` seconds with `watch`."""
    handle = open_queue(url)

    async def sample() -> Sample:
        names = [only] if only is not None else await handle.list_queues()
        return time.monotonic(), [await handle.stats(name) for name in names]

    async def main() -> None:
        async with handle:
            if not watch:
                current = await sample()
                if as_json:
                    print_json([stats_dict(stats) for stats in current[1]])
                else:
                    echo(_table(current, None))
                return
            # A terminal redraws one table in place; a pipe gets each table (or, with --json,
            # one line of JSON per sample, for `jq`).
            terminal = terminal_width() is not None and not as_json
            with _live() if terminal else nullcontext() as live:
                previous: Sample | None = None
                frames = 0
                while True:
                    current = await sample()
                    if as_json:
                        rates = _rates(current, previous)
                        rows = [
                            {**stats_dict(stats), "throughput": rates.get(stats.queue)}
                            for stats in current[1]
                        ]
                        print_json(rows, indent=None)
                    elif live is not None:
                        live.update(_text(_table(current, previous)), refresh=True)
                    else:
                        echo(_table(current, previous) + "\n")
                    frames += 1
                    if count is not None and frames >= count:
                        return
                    previous = current
                    await anyio.sleep(interval)

    run(main)


def _live() -> Any:
    from rich.live import Live

    return Live(auto_refresh=False)


def _text(plain: str) -> Any:
    """Plain text for rich, which would otherwise read `[...]` in it as markup."""
    from rich.text import Text

    return Text(plain)


def _rates(current: Sample, previous: Sample | None) -> dict[str, float | None]:
    """Completed jobs per second between two samples (none on the first)."""
    if previous is None:
        return {}
    elapsed = current[0] - previous[0]
    before = {stats.queue: stats.completed for stats in previous[1]}
    return {
        stats.queue: max(0, stats.completed - before[stats.queue]) / elapsed
        for stats in current[1]
        if stats.queue in before and elapsed > 0
    }


def _table(current: Sample, previous: Sample | None) -> str:
    if not current[1]:
        return "no queues"
    rates = _rates(current, previous)
    columns = ["queue", "state", "ready", "scheduled", "waiting", "running", "failed", "dead"]
    columns += ["completed", "cancelled", "oldest ready", "health"]
    if previous is not None:
        columns.append("done/s")
    rows = []
    for stats in current[1]:
        row = [stats.queue, "paused" if stats.paused else "active"]
        row += map(str, (stats.ready, stats.scheduled, stats.waiting, stats.running))
        row += map(str, (stats.failed, stats.dead))
        row += [str(stats.completed), str(stats.cancelled), age(stats.oldest_ready_age)]
        row.append(str(stats.health))
        if previous is not None:
            rate = rates.get(stats.queue)
            row.append("-" if rate is None else f"{rate:.1f}")
        rows.append(row)
    optional = ["cancelled", "waiting", "scheduled", "completed", "failed"]
    return table(columns, rows, width=terminal_width(), optional=optional, wrap=["queue"])


__all__ = ["show_stats", "stats"]

"""`queuekit schedules`: the schedules the running workers fire, with next run and last fire."""

from __future__ import annotations

import click

from ..registry import ScheduleInfo, list_schedules
from .output import echo, moment, print_json, table, terminal_width
from .shared import json_option, open_queue, run, url_option


@click.command()
@url_option
@json_option
def schedules(url: str | None, as_json: bool) -> None:
    """Each schedule a running worker fires: when it fires, its next run, its last fire and
    job, the slots it skipped, and which workers fire it (times UTC)."""
    handle = open_queue(url)

    async def main() -> list[ScheduleInfo]:
        async with handle:
            return await list_schedules(handle.backend)

    found = run(main)
    if as_json:
        print_json([info.to_dict() for info in found])
    elif not found:
        echo("no running worker fires a schedule")
    else:
        echo(_table(found))


def _table(found: list[ScheduleInfo]) -> str:
    columns = ["name", "type", "queue", "when", "next run", "last fired", "last job", "skipped"]
    columns.append("workers")
    rows = [
        [
            info.name,
            info.type,
            info.queue,
            info.trigger,
            moment(info.next_run),
            moment(info.last_slot),
            info.last_job_id or "-",
            str(info.skipped_slots),
            str(len(info.workers)),
        ]
        for info in found
    ]
    optional = ["type", "queue", "last job", "workers"]
    return table(columns, rows, width=terminal_width(), optional=optional, wrap=["name", "when"])


__all__ = ["schedules"]

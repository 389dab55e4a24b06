"""`queuekit tail`: print job events as they happen, from every process, until Ctrl-C."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import anyio
import click

from ..events import Event, EventKind
from .output import echo, moment, print_json
from .shared import json_option, open_queue, run, url_option

READY = "listening for events; Ctrl-C to stop"
"""Printed on stderr once subscribed: every event from then on is printed."""


@click.command()
@click.option("--queue", help="Only the events of this queue.")
@click.option("--type", "type_", metavar="TYPE", help="Only the events of this task type.")
@click.option("--job-id", help="Only the events of this job.")
@click.option(
    "--kinds",
    metavar="KIND,...",
    help=f"Only these kinds: {', '.join(kind.value for kind in EventKind)}.",
)
@url_option
@json_option
def tail(
    queue: str | None,
    type_: str | None,
    job_id: str | None,
    kinds: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Print job events as they happen (enqueued, started, progress, completed, failed,
    dead, cancelled, waiting, snoozed, deleted), one line each, or one JSON object per line
    with --json.

    Events from before it started are not shown, nor any missed while it was not
    connected: a `dropped` line says when events were lost. SQLite shares events only
    within one process, so tail shows none of another process's.
    """
    handle = open_queue(url)
    chosen = None if kinds is None else [kind.strip() for kind in kinds.split(",") if kind]

    async def main() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with (
                handle,
                handle.events(queue=queue, type=type_, job_id=job_id, kinds=chosen) as stream,
            ):
                echo(READY, err=True)
                async with anyio.create_task_group() as group:
                    group.start_soon(_stop_on_signal, signals, group.cancel_scope)
                    async for event in stream:
                        if as_json:
                            print_json(event.to_dict(), indent=None)
                        else:
                            echo(line_of(event))

    run(main)


async def _stop_on_signal(signals: AsyncIterator[signal.Signals], scope: anyio.CancelScope) -> None:
    """Stop tailing at the first Ctrl-C (or SIGTERM): the subscription ends, exit status 0."""
    async for _ in signals:
        scope.cancel()
        return


def line_of(event: Event) -> str:
    """One event as a line: time, kind, queue, type, job id, and what the kind adds (an
    attempt, progress, a note, a count, an error)."""
    fields = [moment(event.at), event.kind.value, event.queue or "*", event.type or "*"]
    fields.append(event.job_id or "*")
    if event.attempt is not None:
        fields.append(f"attempt {event.attempt}")
    if event.progress is not None:
        fields.append(f"{event.progress:.0%}" + (f" {event.note}" if event.note else ""))
    elif event.note is not None:
        fields.append(event.note)  # why a job waits: a replay, run now, a rate limit...
    if event.kind == EventKind.DROPPED:
        fields.append("events lost" if event.count is None else f"{event.count} events lost")
    elif event.count is not None:
        fields.append(f"{event.count} jobs")
    if event.error is not None:
        fields.append(event.error)
    return "  ".join(fields)

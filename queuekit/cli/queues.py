"""`queuekit queues`: list, pause and resume queues."""

from __future__ import annotations

import click

from .output import echo
from .shared import json_option, open_queue, run, url_option
from .stats import show_stats


@click.group()
def queues() -> None:
    """List, pause and resume queues."""


@queues.command("list")
@url_option
@json_option
def list_queues(url: str | None, as_json: bool) -> None:
    """Every queue with its counts; paused ones are marked."""
    show_stats(url, None, as_json, watch=False, interval=2.0, count=None)


@queues.command()
@click.argument("name")
@url_option
def pause(name: str, url: str | None) -> None:
    """Stop workers claiming from queue NAME (enqueueing still works)."""
    handle = open_queue(url)

    async def main() -> None:
        async with handle:
            await handle.pause(name)

    run(main)
    echo(f"queue {name} paused")


@queues.command()
@click.argument("name")
@url_option
def resume(name: str, url: str | None) -> None:
    """Let workers claim from queue NAME again."""
    handle = open_queue(url)

    async def main() -> None:
        async with handle:
            await handle.resume(name)

    run(main)
    echo(f"queue {name} resumed")

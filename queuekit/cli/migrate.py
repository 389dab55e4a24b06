"""`queuekit migrate`: create or upgrade the backend's schema."""

from __future__ import annotations

import click

from .output import echo
from .shared import open_queue, run, url_option


@click.command()
@url_option
def migrate(url: str | None) -> None:
    """Create or upgrade the backend's schema (SQLite, PostgreSQL; Redis needs none)."""
    handle = open_queue(url)

    async def main() -> None:
        async with handle:
            await handle.backend.migrate()

    run(main)
    echo("schema is up to date")

"""Tasks the CLI tests run in a `queuekit worker` subprocess."""

from __future__ import annotations

from queuekit import Tasks

tasks = Tasks()


@tasks.task()
async def double(n: int) -> int:
    return 2 * n


@tasks.task()
async def explode() -> None:
    raise RuntimeError("kaboom")

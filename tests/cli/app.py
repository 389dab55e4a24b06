"""Tasks the CLI tests run in a `queuekit worker` subprocess."""

from __future__ import annotations

from queuekit import Schedule, Tasks

tasks = Tasks()


@tasks.task()
async def double(n: int) -> int:
    return 2 * n


@tasks.task()
async def explode() -> None:
    raise RuntimeError("kaboom")


@tasks.task()
async def tick() -> str:
    return "tock"


SCHEDULES = [Schedule.every(0.2).job("tick")]

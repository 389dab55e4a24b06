"""Tasks the process-pool tests run in child processes (importable: a child imports them)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from queuekit import Tasks

tasks = Tasks()


class Refused(ValueError):
    """Raised by `refuse`: a discard_on type the worker must see across the process boundary."""


@tasks.task(process=True)
def crunch(n: int) -> int:
    return sum(i * i for i in range(n))


@tasks.task(process=True)
def pid() -> int:
    return os.getpid()


@tasks.task(process=True, timeout=0.5)
def hang(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)


@tasks.task(process=True)
def block(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)


@tasks.task(process=True, discard_on=Refused)
def refuse() -> None:
    raise Refused("not this one")


@tasks.task(process=True, max_attempts=1)
def crash() -> None:
    os._exit(3)


@tasks.task(process=True)
async def later(n: int) -> int:
    await asyncio.sleep(0)
    return n + 1

"""Waiting in tests: for a condition, polled up to a generous deadline, never for a set time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

DEADLINE = 60.0
"""Seconds: long enough for a machine with every core busy, only ever spent on a failure."""


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], what: str, *, timeout: float = DEADLINE
) -> None:
    """Return once `condition()` is true; fail saying `what` did not happen in `timeout` s."""
    deadline = anyio.current_time() + timeout
    while True:
        holds = condition()
        if not isinstance(holds, bool):
            holds = await holds
        if holds:
            return
        if anyio.current_time() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s")
        await anyio.sleep(0.02)

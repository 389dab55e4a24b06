"""`repeat`: a worker's periodic chores (rescuing leases, expiring jobs, pruning), jittered."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

import anyio

from .errors import BackendUnavailableError


async def repeat(
    chore: Callable[[], Awaitable[int]],
    interval: float,
    log: logging.LoggerAdapter[logging.Logger],
    *,
    name: str,
    report: str,
    level: int = logging.INFO,
) -> None:
    """Run `chore` about every `interval` seconds for ever, logging `report` with the count it
    returns when not 0. The jitter (0.5 to 1.5 times) keeps many workers from acting in
    lockstep; a failure is logged and the chore tried again next time."""
    while True:
        await anyio.sleep(interval * random.uniform(0.5, 1.5))
        try:
            count = await chore()
        except BackendUnavailableError as exc:
            log.warning("%s failed; retrying later: %s", name, exc)
            continue
        except Exception:
            log.exception("%s failed; retrying later", name)
            continue
        if count:
            log.log(level, report, count)

"""The loop-lag watchdog: a warning when the event loop was blocked long enough to lose leases."""

from __future__ import annotations

import logging
import time

import anyio

LOOKS_PER_THRESHOLD = 4
"""The watchdog wakes this often per threshold, so no block a quarter over it goes unseen."""


async def watch_loop_lag(lease: float, log: logging.LoggerAdapter[logging.Logger]) -> None:
    """Warn whenever a short sleep overslept by more than a third of `lease`.

    Nothing else runs while code blocks the loop (CPU work or a blocking call in an `async`
    handler): heartbeats, sent every third of the lease, go out late, and a lease can run out
    under a job that is still running.
    """
    threshold = lease / 3
    interval = threshold / LOOKS_PER_THRESHOLD
    while True:
        before = time.monotonic()
        await anyio.sleep(interval)
        lag = time.monotonic() - before - interval
        if lag > threshold:
            log.warning(
                "the event loop was blocked for %.2f s, over a third of the %g s lease: "
                "heartbeats were late and leases may be lost; run blocking code in a plain "
                "(sync) handler, which runs in a thread",
                lag,
                lease,
            )

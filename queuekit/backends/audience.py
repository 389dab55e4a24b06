"""`Audience`: whether anyone hears the events of a store other processes share, as this
process's publishes found; a publish that nobody heard stops its successors for a while."""

from __future__ import annotations

import asyncio
import time

from ..events import EventHub

UNHEARD_SECONDS = 0.5
"""How long a process whose publish nobody heard (the store said none listened) makes and
publishes no events. A first subscriber in a process waits as long once it listens
(`wait_until_heard`), so that no event published after it is subscribed is skipped."""


class Audience:
    """What the publishes of this backend found of the store's listeners."""

    def __init__(self) -> None:
        self._unheard_until = -UNHEARD_SECONDS
        """Until when (monotonic clock) nobody can hear a publish: one found none."""

    def may_hear(self) -> bool:
        """Whether an event published now may reach a subscriber."""
        return time.monotonic() >= self._unheard_until

    def found(self, listening: bool, sent_at: float) -> None:
        """A publish sent at `sent_at` (monotonic clock, read before it was sent) found
        someone `listening`, or nobody: then none can hear one until `UNHEARD_SECONDS` after
        it (an older publish's word holds that long whatever newer ones found: a subscriber
        it missed came later, and waits longer)."""
        if not listening:
            self._unheard_until = max(self._unheard_until, sent_at + UNHEARD_SECONDS)


async def wait_until_heard(listening_since: float) -> None:
    """Return once every process can know of a subscriber listening since `listening_since`
    (monotonic clock): a publish sent after that found it, and none still skips publishing
    on the word of one that found nobody (`UNHEARD_SECONDS`)."""
    await asyncio.sleep(max(0.0, listening_since + UNHEARD_SECONDS - time.monotonic()))


def gap_once_heard(hub: EventHub) -> None:
    """A subscription is back after a loss: tell `hub`'s subscribers of the gap once every
    publisher can know it is back, so that the gap covers what was published while it was
    down and what publishers that found nobody listening skip until then."""
    asyncio.get_running_loop().call_later(UNHEARD_SECONDS, hub.gap)

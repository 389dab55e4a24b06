"""`wait_at_most`, which every backend's waits for work, outcomes and losses go through."""

import asyncio

import pytest

from queuekit.backends.waiters import wait_at_most


@pytest.mark.parametrize("turns", range(6))
async def test_a_cancel_that_comes_as_the_event_is_set_ends_the_wait(turns: int) -> None:
    """The cancel comes zero to five loop turns after the event is set: either the wait has
    ended by then, or the cancel reaches its caller (Python 3.11's `asyncio.wait_for` lost it
    at zero to two turns, and the caller went on as if never cancelled)."""
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_at_most(event, 10))
    await asyncio.sleep(0)
    event.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    if waiting.cancel():
        with pytest.raises(asyncio.CancelledError):
            await waiting
    else:
        assert waiting.result() is None

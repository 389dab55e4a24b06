"""The wake-up debouncer: a wake-up owed inside the cooldown rides on the next enqueue after
it, or goes out on its own a cooldown after it was owed; it is never lost."""

from __future__ import annotations

import asyncio
import time

from queuekit.backends.postgres.debouncer import Debouncer

COOLDOWN = 0.05


def _spin_past(moment: float) -> None:
    """Wait without yielding to the event loop, so no timer of the debouncer can run."""
    while time.monotonic() < moment:
        pass


async def test_an_enqueue_after_the_cooldown_carries_the_owed_wake_up() -> None:
    sent: list[str] = []

    async def send(queue: str) -> None:
        sent.append(queue)

    debouncer = Debouncer(COOLDOWN, send)
    first = time.monotonic()
    assert debouncer.take(["q"]) == ["q"]
    assert debouncer.take(["q"]) == []  # owed
    _spin_past(first + COOLDOWN)
    assert debouncer.take(["q"]) == ["q"]  # carries what was owed
    await asyncio.sleep(COOLDOWN * 4)
    assert sent == []  # nothing went out on its own
    await debouncer.close()
    assert sent == []


async def test_an_owed_wake_up_goes_out_on_its_own_when_no_enqueue_carries_it() -> None:
    heard = asyncio.Event()
    sent: list[str] = []

    async def send(queue: str) -> None:
        sent.append(queue)
        heard.set()

    debouncer = Debouncer(COOLDOWN, send)
    assert debouncer.take(["q", "r"]) == ["q", "r"]
    assert debouncer.take(["q"]) == []
    await asyncio.wait_for(heard.wait(), 30)
    assert sent == ["q"]
    await debouncer.close()
    assert sent == ["q"]


async def test_a_wake_up_whose_carrier_failed_goes_out_on_its_own() -> None:
    heard = asyncio.Event()
    sent: list[str] = []

    async def send(queue: str) -> None:
        sent.append(queue)
        heard.set()

    debouncer = Debouncer(COOLDOWN, send)
    first = time.monotonic()
    assert debouncer.take(["q"]) == ["q"]
    assert debouncer.take(["q"]) == []  # owed
    _spin_past(first + COOLDOWN)
    carried = debouncer.take(["q"])
    assert carried == ["q"]
    debouncer.unsent(carried)  # the enqueue that carried it was refused
    await asyncio.wait_for(heard.wait(), 30)
    assert sent == ["q"]
    await debouncer.close()
    assert sent == ["q"]


async def test_closing_sends_what_is_owed() -> None:
    sent: list[str] = []

    async def send(queue: str) -> None:
        sent.append(queue)

    debouncer = Debouncer(60.0, send)
    assert debouncer.take(["q"]) == ["q"]
    assert debouncer.take(["q"]) == []
    await debouncer.close()
    assert sent == ["q"]

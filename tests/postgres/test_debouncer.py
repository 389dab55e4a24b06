"""The wake-up debouncer: a wake-up owed inside the cooldown rides on the next enqueue after
it, or goes out on its own a cooldown after it was owed; it is never lost."""

from __future__ import annotations

import asyncio
import time

from queuekit.backends.postgres.debouncer import Debouncer

COOLDOWN = 0.05


class Sent:
    """What a debouncer sent on its own, and an event set by the first."""

    def __init__(self) -> None:
        self.queues: list[str] = []
        self.first = asyncio.Event()

    async def __call__(self, queue: str) -> None:
        self.queues.append(queue)
        self.first.set()


def _spin_past(moment: float) -> None:
    """Wait without yielding to the event loop, so no timer of the debouncer can run."""
    while time.monotonic() < moment:
        pass


def _owe_then_carry(debouncer: Debouncer) -> list[str]:
    """Owe a wake-up of queue q, then take it in the first enqueue after the cooldown."""
    assert debouncer.take(["q"]) == ["q"]
    sent_at = time.monotonic()  # read after the take's own reading: its cooldown ends before
    assert debouncer.take(["q"]) == []  # owed
    _spin_past(sent_at + COOLDOWN)
    return debouncer.take(["q"])


async def _sent_alone_once(debouncer: Debouncer, sent: Sent) -> None:
    """The owed wake-up of q goes out on its own, and only once (closing sends no other)."""
    await asyncio.wait_for(sent.first.wait(), 30)
    assert sent.queues == ["q"]
    await debouncer.close()
    assert sent.queues == ["q"]


async def test_an_enqueue_after_the_cooldown_carries_the_owed_wake_up() -> None:
    sent = Sent()
    debouncer = Debouncer(COOLDOWN, sent)
    assert _owe_then_carry(debouncer) == ["q"]
    await asyncio.sleep(COOLDOWN * 4)
    assert sent.queues == []  # nothing went out on its own
    await debouncer.close()
    assert sent.queues == []


async def test_an_owed_wake_up_goes_out_on_its_own_when_no_enqueue_carries_it() -> None:
    sent = Sent()
    debouncer = Debouncer(COOLDOWN, sent)
    assert debouncer.take(["q", "r"]) == ["q", "r"]
    assert debouncer.take(["q"]) == []
    await _sent_alone_once(debouncer, sent)


async def test_a_wake_up_whose_carrier_failed_goes_out_on_its_own() -> None:
    sent = Sent()
    debouncer = Debouncer(COOLDOWN, sent)
    carried = _owe_then_carry(debouncer)
    assert carried == ["q"]
    debouncer.unsent(carried)  # the enqueue that carried it was refused
    await _sent_alone_once(debouncer, sent)


async def test_closing_sends_what_is_owed() -> None:
    sent = Sent()
    debouncer = Debouncer(60.0, sent)
    assert debouncer.take(["q"]) == ["q"]
    assert debouncer.take(["q"]) == []
    await debouncer.close()
    assert sent.queues == ["q"]

"""`queuekit activity`: a queue's minutes as a table or JSON, written by real enqueues, with
the depth their first write sampled."""

from __future__ import annotations

import anyio

import queuekit
from queuekit.activity import MAX_MINUTES

from ..setups import BackendSetup
from .test_cli import fails, ok, ok_json


async def test_activity_shows_what_was_enqueued(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    async with queuekit.connect(url) as queue:
        for _ in range(3):
            await queue.enqueue("noop", queue="mail")
    # Closing the handle wrote its counts.

    body = await anyio.to_thread.run_sync(lambda: ok_json("activity", "mail", url=url))
    assert sum(minute["enqueued"] for minute in body["minutes"]) == 3
    # The one write (as the handle closed) created its minute: it sampled the 3 ready jobs.
    assert [minute["depth"] for minute in body["minutes"]] == [3]
    text = await anyio.to_thread.run_sync(lambda: ok("activity", "mail", url=url))
    header, *rows = text.splitlines()
    assert header.split()[:5] == ["minute", "enqueued", "completed", "failed", "dead"]
    assert header.split()[-1] == "depth"
    assert sum(int(row.split()[2]) for row in rows) == 3
    assert [row.split()[-1] for row in rows] == ["3"]

    quiet = await anyio.to_thread.run_sync(lambda: ok("activity", "sms", url=url))
    assert quiet == "no activity in 'sms' in the last 60 minutes\n"


def test_activity_refuses_a_bad_window(durable_setup: BackendSetup) -> None:
    error = fails("activity", "mail", "--minutes", str(MAX_MINUTES + 1), url=durable_setup.url)
    assert "--minutes" in error

"""The dashboard's stream of changes (`/dashboard/events`): behind the login, scoped to the
fragment a page refreshes, a message per burst of events; and the CSP lets a page follow it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import anyio
import httpx

import queuekit
from queuekit import Queue
from queuekit.api import create_app
from queuekit.events import EventFilter
from queuekit.web.guards import CSP
from queuekit.web.live import fragment_filter

from ..setups import BackendSetup
from ..waiting import DEADLINE
from .server import serving

KEY = "dashboard-events-key-0123"


def test_each_fragment_follows_the_events_that_change_it() -> None:
    base = "/root/dashboard/fragments"
    assert fragment_filter(f"{base}/queues") == EventFilter()
    assert fragment_filter(f"{base}/workers") == EventFilter()
    assert fragment_filter(f"{base}/queues/mail?span=1h") == EventFilter(queue="mail")
    assert fragment_filter(f"{base}/jobs/01abc") == EventFilter(job_id="01abc")
    assert fragment_filter(f"{base}/jobs?queue=mail&type=send&status=dead") == EventFilter(
        queue="mail", type="send"
    )
    assert fragment_filter(f"{base}/jobs?queue=&type=") == EventFilter()
    assert fragment_filter("") == EventFilter()


def test_the_csp_lets_pages_connect_to_their_own_origin_only() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    # connect-src falls back to default-src: EventSource and fetch reach 'self', nothing else.
    assert directives.get("connect-src", directives["default-src"]) == "'self'"


async def _data(lines: AsyncIterator[str]) -> int:
    async for line in lines:
        if line.startswith("data: "):
            return int(line.removeprefix("data: "))
    raise AssertionError("the stream ended")


async def test_the_stream_needs_a_login_and_says_when_a_fragment_changed(
    durable_setup: BackendSetup,
) -> None:
    assert durable_setup.url is not None
    app = create_app(queuekit.connect(durable_setup.url), api_key=KEY)
    with serving(app) as base:
        async with (
            Queue(durable_setup.make()) as queue,
            httpx.AsyncClient(base_url=base, timeout=DEADLINE) as http,
        ):
            refused = await http.get("/dashboard/events", headers={"Accept": "text/html"})
            assert refused.status_code == 303  # to the login page, as every page
            login = await http.get("/dashboard/login")
            token = re.search(r'name="csrf" value="([^"]+)"', login.text)
            assert token is not None
            await http.post("/dashboard/login", data={"key": KEY, "csrf": token[1]})
            mine = await queue.enqueue("t", queue="mail")
            fragment = f"/dashboard/fragments/jobs/{mine.id}"
            async with http.stream("GET", "/dashboard/events", params={"fragment": fragment}) as s:
                assert s.status_code == 200
                assert s.headers["content-type"].startswith("text/event-stream")
                lines = s.aiter_lines()
                with anyio.fail_after(DEADLINE):
                    assert await anext(lines) == ": ready"
                    await queue.enqueue("t", queue="mail")  # another job: not this fragment's
                    await queue.cancel(mine.id)
                    assert await _data(lines) == 1
            # A queue of its own: an event of the part above, heard late, is not counted here.
            bulk = "/dashboard/fragments/queues/bulk"
            async with http.stream("GET", "/dashboard/events", params={"fragment": bulk}) as s:
                lines = s.aiter_lines()
                with anyio.fail_after(DEADLINE):
                    assert await anext(lines) == ": ready"
                    await queue.enqueue_many(
                        [queuekit.new_job("t", queue="bulk") for _ in range(5)]
                    )
                    # Once at the first event, then at most twice a second: all counted.
                    counted = 0
                    while counted < 5:
                        counted += await _data(lines)
                    assert counted == 5

"""`GET /v1/events`: server-sent events from a real server, filtered as asked, behind the same
authentication as every route; a comment line keeps an idle stream open."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

import queuekit
from queuekit import Queue
from queuekit.api import create_app
from queuekit.web import live

from ..dashboard.server import serving
from ..setups import BackendSetup
from ..waiting import DEADLINE, eventually
from .conftest import AUTH, KEY


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    """The stream's lines, each within the deadline."""
    lines = response.aiter_lines()
    while True:
        with anyio.fail_after(DEADLINE):
            yield await anext(lines)


async def _next_data(lines: AsyncIterator[str]) -> Any:
    async for line in lines:
        if line.startswith("data: "):
            return json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended")


async def test_events_stream_as_they_happen_filtered(durable_setup: BackendSetup) -> None:
    assert durable_setup.url is not None
    served = queuekit.connect(durable_setup.url)
    app = create_app(served, api_key=KEY)
    with serving(app) as base:
        async with (
            Queue(durable_setup.make()) as queue,
            httpx.AsyncClient(base_url=base, headers=AUTH, timeout=DEADLINE) as client,
            client.stream("GET", "/v1/events?queue=q&kinds=enqueued,cancelled") as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-store"
            lines = _lines(response)
            assert await anext(lines) == ": ready"  # subscribed: what follows is received
            await queue.enqueue("t", queue="elsewhere")
            job = await queue.enqueue("t", queue="q")
            await queue.cancel(job.id)
            first = await _next_data(lines)
            second = await _next_data(lines)
        # The client hung up: the server's subscription ended.
        await eventually(lambda: not served.backend.event_hub().sinks, "the unsubscribe")
    assert first == {
        "kind": "enqueued",
        "queue": "q",
        "job_id": job.id,
        "type": "t",
        "at": job.created_at.isoformat(),
        "attempt": 0,
    }
    assert (second["kind"], second["job_id"]) == ("cancelled", job.id)


async def test_an_idle_stream_gets_comment_lines(
    durable_setup: BackendSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "KEEPALIVE_SECONDS", 0.05)
    assert durable_setup.url is not None
    app = create_app(queuekit.connect(durable_setup.url), api_key=KEY)
    with serving(app) as base:
        async with (
            httpx.AsyncClient(base_url=base, headers=AUTH, timeout=DEADLINE) as client,
            client.stream("GET", "/v1/events") as response,
        ):
            lines = _lines(response)
            assert await anext(lines) == ": ready"
            assert [line async for line in _take(lines, 4)] == [
                "",
                ": keep-alive",
                "",
                ": keep-alive",
            ]


async def _take(lines: AsyncIterator[str], count: int) -> AsyncIterator[str]:
    for _ in range(count):
        yield await anext(lines)


async def test_events_need_the_key_and_valid_filters(queue: Queue) -> None:
    app = create_app(queue, api_key=KEY)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        refused = await client.get("/v1/events")
        assert refused.status_code == 401
        assert refused.json() == {"error": "missing or wrong API key"}
        wrong = await client.get(
            "/v1/events", headers={"Authorization": "Bearer wrong-key-0123456"}
        )
        assert wrong.status_code == 401
        for query, error in (
            ("kinds=finished", "unknown event kind"),
            ("queue=no%20spaces", "invalid queue name"),
            ("since=yesterday", "unknown query parameter 'since'"),
        ):
            bad = await client.get(f"/v1/events?{query}", headers=AUTH)
            assert bad.status_code == 422, query
            assert error in bad.json()["error"], bad.json()
    assert not queue.backend.event_hub().sinks

"""The attacks that worked against the API, replayed: each must now change and reveal nothing.

The requests carry the headers Chromium sends for them (checked for real in
tests/dashboard/test_browser.py); here they go through httpx's ASGI transport, on SQLite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from queuekit import Queue
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.metrics import Metrics

KEY = "api-security-test-key"
NO_CORS_POST = {
    # What `fetch(url, {method: "POST", mode: "no-cors", body: "..."})` sends from another site:
    # a "simple" request, so the browser sends it without asking (no preflight).
    "Content-Type": "text/plain;charset=UTF-8",
    "Origin": "http://evil.example",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "no-cors",
}


@pytest.fixture
async def sqlite_queue(tmp_path: Path) -> AsyncIterator[Queue]:
    async with Queue(SQLiteBackend(str(tmp_path / "jobs.db"))) as queue:
        yield queue


def client(app: Starlette, host: str = "127.0.0.1:8000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


async def test_a_cross_site_no_cors_post_changes_nothing(sqlite_queue: Queue) -> None:
    await sqlite_queue.enqueue("t", queue="q")
    async with client(create_app(sqlite_queue)) as http:  # keyless, as on loopback
        body = '{"type": "evil", "payload": {"rm": "-rf"}}'
        attack = await http.post("/v1/jobs", content=body, headers=NO_CORS_POST)
        assert attack.status_code == 403 and "cross-origin" in attack.json()["error"]
        bulk = await http.post(
            "/v1/jobs/bulk", content=f'{{"jobs": [{body}]}}', headers=NO_CORS_POST
        )
        assert bulk.status_code == 403
        assert (await http.post("/v1/queues/q/pause", headers=NO_CORS_POST)).status_code == 403
        assert (await http.post("/v1/jobs/delete", headers=NO_CORS_POST)).status_code == 403
        # A sandboxed frame or a data: URL sends `Origin: null`: refused too.
        opaque = {**NO_CORS_POST, "Origin": "null"}
        assert (await http.post("/v1/jobs", content=body, headers=opaque)).status_code == 403
        # Without any Origin (not a browser), a body still has to be declared JSON...
        plain = await http.post("/v1/jobs", content=body, headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415
        form = await http.post("/v1/jobs", data={"type": "evil"})
        assert form.status_code == 415
        # ...which a page of another site cannot send without a preflight, never granted.
        preflight = await http.options(
            "/v1/jobs",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        # The same request from the app's own origin, or from curl, works.
        same = {"Content-Type": "application/json", "Origin": "http://127.0.0.1:8000"}
        assert (await http.post("/v1/jobs", content=body, headers=same)).status_code == 201
    assert [job.type for job in (await sqlite_queue.list_jobs()).jobs] == ["evil", "t"]
    assert await sqlite_queue.paused_queues() == set()


async def test_a_rebound_host_name_is_refused(sqlite_queue: Queue) -> None:
    await sqlite_queue.enqueue("t", {"card": "4111 1111 1111 1111"})
    app = create_app(sqlite_queue)
    # evil.example's DNS now answers 127.0.0.1: the page reads "its own" origin.
    async with client(app, "evil.example:8000") as rebound:
        for path in ("/v1/jobs", "/dashboard/jobs", "/v1/queues"):
            response = await rebound.get(path)
            assert response.status_code == 400 and "4111" not in response.text
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"):
        async with client(app, host) as local:
            assert (await local.get("/v1/jobs")).status_code == 200, host
    # Configured names are added to loopback, and then checked even with a key.
    named = create_app(sqlite_queue, api_key=KEY, allowed_hosts=["queues.internal"])
    for host, status in (("queues.internal", 200), ("127.0.0.1", 200), ("evil.example", 400)):
        async with client(named, host) as http:
            http.headers["Authorization"] = f"Bearer {KEY}"
            assert (await http.get("/v1/jobs")).status_code == status, host
    # With a key and no list, any name: a rebound page has no key to send.
    async with client(create_app(sqlite_queue, api_key=KEY), "evil.example") as http:
        assert (await http.get("/v1/jobs")).status_code == 401


async def test_authenticate_alone_guards_the_api_and_metrics(sqlite_queue: Queue) -> None:
    async def staff_only(request: Request) -> bool:
        return request.headers.get("x-user") == "staff"

    app = create_app(sqlite_queue, authenticate=staff_only, metrics=Metrics())
    async with client(app, "app.example") as http:
        for path in ("/v1/queues", "/v1/jobs", "/metrics", "/v1/openapi.json", "/dashboard/"):
            assert (await http.get(path)).status_code == 403, path
            assert (await http.get(path, headers={"x-user": "staff"})).status_code == 200, path
        assert (await http.post("/v1/jobs", json={"type": "t"})).status_code == 403
        assert (await http.post("/v1/queues/q/pause")).status_code == 403
        staff = await http.post("/v1/jobs", json={"type": "t"}, headers={"x-user": "staff"})
        assert staff.status_code == 201
    assert (await sqlite_queue.list_jobs()).jobs[0].id == staff.json()["id"]
    assert await sqlite_queue.paused_queues() == set()


async def test_metrics_need_the_key_too(sqlite_queue: Queue) -> None:
    app = create_app(sqlite_queue, api_key=KEY, metrics=Metrics(), dashboard=False)
    async with client(app) as http:
        assert (await http.get("/metrics")).status_code == 401
        ok = await http.get("/metrics", headers={"Authorization": f"bearer {KEY}"})
        assert ok.status_code == 200 and "queuekit_queue_jobs" in ok.text

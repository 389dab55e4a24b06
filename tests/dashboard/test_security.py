"""The dashboard's guards over HTTP: login cookie, CSRF, same origin, `authenticate`, escaping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from queuekit import Queue
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.dashboard import CSRF_COOKIE, SESSION_COOKIE

KEY = "k3y"


@pytest.fixture
async def sqlite_queue(tmp_path: Path) -> AsyncIterator[Queue]:
    async with Queue(SQLiteBackend(str(tmp_path / "jobs.db"))) as queue:
        yield queue


def client(queue: Queue, **options: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(queue, **options))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_login_sets_an_httponly_cookie_that_is_not_the_key(sqlite_queue: Queue) -> None:
    async with client(sqlite_queue, api_key=KEY) as http:
        assert (await http.get("/dashboard/")).headers["location"].endswith("/dashboard/login")
        assert (await http.get("/dashboard/fragments/queues")).status_code == 401
        login = await http.get("/dashboard/login")
        assert "HttpOnly" in login.headers["set-cookie"]
        assert "script-src 'self'" in login.headers["content-security-policy"]
        token = http.cookies[CSRF_COOKIE]
        no_token = await http.post("/dashboard/login", data={"key": KEY})
        assert no_token.status_code == 403
        wrong = await http.post("/dashboard/login", data={"key": "nope", "csrf": token})
        assert wrong.status_code == 401
        ok = await http.post("/dashboard/login", data={"key": KEY, "csrf": token})
        assert ok.status_code == 303
        session = ok.headers["set-cookie"]
        assert "httponly" in session.lower() and "samesite=strict" in session.lower()
        assert KEY not in http.cookies[SESSION_COOKIE]
        assert "Log out" in (await http.get("/dashboard/")).text
        # The API itself still wants the bearer key.
        assert (await http.get("/v1/queues")).status_code == 401
        out = await http.post("/dashboard/logout", data={"csrf": token})
        assert out.status_code == 303 and SESSION_COOKIE not in http.cookies
        assert (await http.get("/dashboard/")).status_code == 303
    async with client(sqlite_queue, api_key=KEY) as http:
        bearer = await http.get("/dashboard/", headers={"Authorization": f"Bearer {KEY}"})
        assert bearer.status_code == 200


async def test_actions_need_a_valid_csrf_token_and_same_origin(sqlite_queue: Queue) -> None:
    await sqlite_queue.enqueue("t", queue="q")
    async with client(sqlite_queue) as http:
        await http.get("/dashboard/")
        token = http.cookies[CSRF_COOKIE]
        assert (await http.post("/dashboard/queues/q/pause")).status_code == 403
        forged = token.split(".")[0] + ".0000"
        http.cookies.set(CSRF_COOKIE, forged, path="/dashboard")
        refused = await http.post("/dashboard/queues/q/pause", data={"csrf": forged})
        assert refused.status_code == 403
        http.cookies.set(CSRF_COOKIE, token, path="/dashboard")
        other_site = await http.post(
            "/dashboard/queues/q/pause", data={"csrf": token}, headers={"Origin": "http://evil"}
        )
        assert other_site.status_code == 403
        assert await sqlite_queue.paused_queues() == set()
        done = await http.post("/dashboard/queues/q/pause", data={"csrf": token})
        assert done.status_code == 303 and await sqlite_queue.paused_queues() == {"q"}
        # A token from another app (another secret) is refused.
    async with client(sqlite_queue) as other:
        other.cookies.set(CSRF_COOKIE, token, path="/dashboard")
        assert (
            await other.post("/dashboard/queues/q/resume", data={"csrf": token})
        ).status_code == 403


async def test_authenticate_hook(sqlite_queue: Queue) -> None:
    async def staff_only(request: Request) -> bool:
        return request.headers.get("x-user") == "staff"

    async with client(sqlite_queue, authenticate=staff_only) as http:
        assert (await http.get("/dashboard/")).status_code == 403
        assert (await http.get("/dashboard/", headers={"x-user": "staff"})).status_code == 200


async def test_hostile_values_are_escaped(sqlite_queue: Queue) -> None:
    job = await sqlite_queue.enqueue("t", {"x": "<script>alert(1)</script>"})
    async with client(sqlite_queue) as http:
        for path in ("/dashboard/jobs", f"/dashboard/jobs/{job.id}"):
            page = (await http.get(path)).text
            assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
        flash = await http.get("/dashboard/", params={"msg": "<b>hi</b>"})
        assert "<b>hi" not in flash.text and "&lt;b&gt;hi" in flash.text
        search = await http.get("/dashboard/jobs", params={"type": '"><svg onload=x>'})
        assert "<svg onload" not in search.text


async def test_the_job_page_shows_headers_escaped(sqlite_queue: Queue) -> None:
    tagged = await sqlite_queue.enqueue("t", headers={"<b>key</b>": "<script>alert(2)</script>"})
    plain = await sqlite_queue.enqueue("t")
    async with client(sqlite_queue) as http:
        page = (await http.get(f"/dashboard/jobs/{tagged.id}")).text
        assert "<h2>Headers</h2>" in page
        assert "&lt;b&gt;key&lt;/b&gt;" in page and "&lt;script&gt;alert(2)" in page
        assert "<script>alert" not in page and "<b>key" not in page
        assert "<h2>Headers</h2>" not in (await http.get(f"/dashboard/jobs/{plain.id}")).text


async def test_paging_and_search(sqlite_queue: Queue) -> None:
    for i in range(30):
        await sqlite_queue.enqueue("even" if i % 2 == 0 else "odd", {"i": i})
    async with client(sqlite_queue) as http:
        first = (await http.get("/dashboard/jobs")).text
        assert first.count("<tr data-job=") == 25 and "Next page" in first
        odd = (await http.get("/dashboard/jobs", params={"type": "odd"})).text
        assert odd.count("<tr data-job=") == 15
        job = await sqlite_queue.enqueue("needle")
        found = (await http.get("/dashboard/jobs", params={"id": job.id})).text
        assert found.count("<tr data-job=") == 1
        missing = (await http.get("/dashboard/jobs", params={"id": "nope"})).text
        assert "No jobs match" in missing


async def test_dashboard_can_be_left_out(sqlite_queue: Queue) -> None:
    async with client(sqlite_queue, dashboard=False) as http:
        assert (await http.get("/dashboard/")).status_code == 404


def test_throughput_sparkline() -> None:
    from queuekit.dashboard import Throughput
    from queuekit.stats import QueueCounts, QueueStats

    samples = Throughput()
    assert "collecting" in samples.sparkline("q")
    for second, done in [(0, 0), (10, 20), (20, 20), (30, 80), (31, 99)]:
        samples.record(QueueStats.from_counts("q", QueueCounts(completed=done)), now=second)
    assert samples.rates("q") == [2.0, 0.0, 6.0]  # the sample one second later is skipped
    svg = samples.sparkline("q")
    assert svg.startswith("<svg") and "360 jobs/min now" in svg

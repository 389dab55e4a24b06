"""The dashboard's guards over HTTP: sessions, CSRF, Origin, `authenticate`, escaping, flashes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from queuekit import Queue
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.web.auth import SESSION_SECONDS
from queuekit.web.sessions import SESSION_COOKIE

KEY = "dashboard-test-key-0123"
SECRET = b"a-secret-shared-by-processes"


@pytest.fixture
async def sqlite_queue(tmp_path: Path) -> AsyncIterator[Queue]:
    async with Queue(SQLiteBackend(str(tmp_path / "jobs.db"))) as queue:
        yield queue


def client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


def token_of(page: httpx.Response) -> str:
    """The CSRF token of a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def log_in(http: httpx.AsyncClient, key: str = KEY) -> httpx.Response:
    token = token_of(await http.get("/dashboard/login"))
    return await http.post("/dashboard/login", data={"key": key, "csrf": token})


async def test_login_makes_a_new_session_that_logout_revokes(sqlite_queue: Queue) -> None:
    app = create_app(sqlite_queue, api_key=KEY)
    async with client(app) as http:
        page = await http.get("/dashboard/", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"
        assert (await http.get("/dashboard/fragments/queues")).status_code == 401
        login = await http.get("/dashboard/login")
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "script-src 'self'" in login.headers["content-security-policy"]
        before = http.cookies[SESSION_COOKIE]
        no_token = await http.post("/dashboard/login", data={"key": KEY})
        assert no_token.status_code == 403
        wrong = await http.post("/dashboard/login", data={"key": "nope", "csrf": token_of(login)})
        assert wrong.status_code == 401 and "Wrong key." in wrong.text
        ok = await http.post("/dashboard/login", data={"key": KEY, "csrf": token_of(login)})
        assert ok.status_code == 303
        session = http.cookies[SESSION_COOKIE]
        assert session != before and KEY not in session
        overview = await http.get("/dashboard/")
        assert overview.status_code == 200 and "Log out" in overview.text
        assert token_of(overview) != token_of(login)  # a login gets a new CSRF token
        # One decision: the session opens the API too.
        assert (await http.get("/v1/queues")).status_code == 200

        out = await http.post("/dashboard/logout", data={"csrf": token_of(overview)})
        assert out.status_code == 303 and SESSION_COOKIE not in http.cookies
    # The cookie as it was before logout, replayed: refused.
    async with client(app) as thief:
        thief.cookies.set(SESSION_COOKIE, session)
        assert (await thief.get("/dashboard/fragments/queues")).status_code == 401
        assert (await thief.get("/v1/queues")).status_code == 401


async def test_each_login_gets_its_own_session(sqlite_queue: Queue) -> None:
    app = create_app(sqlite_queue, api_key=KEY)
    async with client(app) as one, client(app) as two:
        await log_in(one)
        await log_in(two)
        assert one.cookies[SESSION_COOKIE] != two.cookies[SESSION_COOKIE]
        # Logging one out leaves the other logged in.
        page = await one.get("/dashboard/")
        await one.post("/dashboard/logout", data={"csrf": token_of(page)})
        assert (await two.get("/dashboard/fragments/queues")).status_code == 200


async def test_sessions_expire(sqlite_queue: Queue) -> None:
    app = create_app(sqlite_queue, api_key=KEY)
    now = [1_000_000.0]
    app.state.auth.clock = lambda: now[0]
    async with client(app) as http:
        await log_in(http)
        assert (await http.get("/dashboard/fragments/queues")).status_code == 200
        now[0] += SESSION_SECONDS - 1
        assert (await http.get("/dashboard/fragments/queues")).status_code == 200
        now[0] += 2
        assert (await http.get("/dashboard/fragments/queues")).status_code == 401


async def test_a_shared_secret_keeps_sessions_across_processes(sqlite_queue: Queue) -> None:
    first = create_app(sqlite_queue, api_key=KEY, secret=SECRET)
    restarted = create_app(sqlite_queue, api_key=KEY, secret=SECRET)
    other_secret = create_app(sqlite_queue, api_key=KEY)
    async with client(first) as http:
        await log_in(http)
        session = http.cookies[SESSION_COOKIE]
    for app, status in ((restarted, 200), (other_secret, 401)):
        async with client(app) as http:
            http.cookies.set(SESSION_COOKIE, session)
            assert (await http.get("/dashboard/fragments/queues")).status_code == status


async def test_forged_or_tampered_cookies_are_refused(sqlite_queue: Queue) -> None:
    app = create_app(sqlite_queue, api_key=KEY)
    async with client(app) as http:
        await log_in(http)
        body, _, mac = http.cookies[SESSION_COOKIE].partition(".")
    async with client(app) as forger:
        for value in (f"{body}.AAAA", f"{body[:-4]}AAAA.{mac}", "garbage", ""):
            forger.cookies.set(SESSION_COOKIE, value)
            assert (await forger.get("/dashboard/fragments/queues")).status_code == 401


async def test_repeated_wrong_keys_are_slowed_down(sqlite_queue: Queue) -> None:
    app = create_app(sqlite_queue, api_key=KEY)
    now = [5_000.0]
    app.state.auth.clock = lambda: now[0]
    async with client(app) as http:
        for _ in range(5):
            assert (await log_in(http, "wrong")).status_code == 401
        blocked = await log_in(http)  # even the right key waits
        assert blocked.status_code == 429 and blocked.headers["retry-after"] == "1"
        bearer = await http.get("/v1/queues", headers={"Authorization": f"Bearer {KEY}"})
        assert bearer.status_code == 429  # the same decision for the API
        now[0] += 1.5
        assert (await log_in(http, "wrong")).status_code == 401
        assert (await log_in(http)).status_code == 429  # the next wait doubles
        assert (await log_in(http)).headers["retry-after"] == "2"
        now[0] += 2.5
        assert (await log_in(http)).status_code == 303
    # Another client was never held up.
    other = httpx.ASGITransport(app=app, client=("127.0.0.2", 4000))
    async with httpx.AsyncClient(transport=other, base_url="http://127.0.0.1") as http:
        assert (await log_in(http)).status_code == 303


async def test_actions_need_the_sessions_csrf_token_and_same_origin(sqlite_queue: Queue) -> None:
    await sqlite_queue.enqueue("t", queue="q")
    app = create_app(sqlite_queue)
    async with client(app) as http, client(app) as other_session:
        token = token_of(await http.get("/dashboard/"))
        assert (await http.post("/dashboard/queues/q/pause")).status_code == 403
        assert (await http.post("/dashboard/queues/q/pause", data={"csrf": "x"})).status_code == 403
        # A token belongs to its session: another browser's is refused.
        other_token = token_of(await other_session.get("/dashboard/"))
        stolen = await http.post("/dashboard/queues/q/pause", data={"csrf": other_token})
        assert stolen.status_code == 403
        for origin in ("http://evil.example", "null", "http://127.0.0.1:1"):
            refused = await http.post(
                "/dashboard/queues/q/pause", data={"csrf": token}, headers={"Origin": origin}
            )
            assert refused.status_code == 403, origin
        assert await sqlite_queue.paused_queues() == set()
        done = await http.post(
            "/dashboard/queues/q/pause",
            data={"csrf": token},
            headers={"Origin": "http://127.0.0.1"},
        )
        assert done.status_code == 303 and await sqlite_queue.paused_queues() == {"q"}
    # A token and cookie from another app (another secret) are refused.
    async with client(create_app(sqlite_queue)) as elsewhere:
        elsewhere.cookies.update(http.cookies)
        moved = await elsewhere.post("/dashboard/queues/q/resume", data={"csrf": token})
        assert moved.status_code == 403


async def test_a_form_over_64_kib_is_413(sqlite_queue: Queue) -> None:
    await sqlite_queue.enqueue("t", queue="q")
    async with client(create_app(sqlite_queue)) as http:
        token = token_of(await http.get("/dashboard/"))
        big = await http.post(
            "/dashboard/queues/q/pause", data={"csrf": token, "pad": "x" * 70_000}
        )
        assert big.status_code == 413 and "request body over" in big.text


async def test_job_data_renders_as_text(sqlite_queue: Queue) -> None:
    hostile = {"x": "<script>alert(1)</script>", "token": "__CSRF__", "csrf": "{{ csrf }}"}
    job = await sqlite_queue.enqueue("t", hostile, headers={"<b>key</b>": "<i>value</i>"})
    async with client(create_app(sqlite_queue)) as http:
        for path in ("/dashboard/jobs", f"/dashboard/jobs/{job.id}"):
            page = (await http.get(path)).text
            assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
            assert "__CSRF__" in page and "{{ csrf }}" in page
            # The token is in the forms' fields and nowhere else.
            tokens = re.findall(r'name="csrf" value="([^"]+)"', page)
            assert all(page.count(token) == len(tokens) for token in tokens)
        detail = (await http.get(f"/dashboard/jobs/{job.id}")).text
        assert "&lt;b&gt;key&lt;/b&gt;" in detail and "<b>key" not in detail
        search = await http.get("/dashboard/jobs", params={"type": '"><svg onload=x>'})
        assert "<svg onload" not in search.text and search.status_code == 422


async def test_flash_messages_come_from_the_server_only(sqlite_queue: Queue) -> None:
    await sqlite_queue.enqueue("t", queue="q")
    async with client(create_app(sqlite_queue)) as http:
        spoofed = await http.get("/dashboard/", params={"msg": "Your key expired: mail it to x"})
        assert "mail it" not in spoofed.text and 'class="flash"' not in spoofed.text
        token = token_of(spoofed)
        done = await http.post("/dashboard/queues/q/pause", data={"csrf": token})
        assert done.headers["location"] == "/dashboard/"  # nothing in the URL
        shown = await http.get("/dashboard/")
        assert '<p class="flash" role="status">queue q paused</p>' in shown.text
        assert 'class="flash"' not in (await http.get("/dashboard/")).text  # shown once


async def test_paging_and_search(sqlite_queue: Queue) -> None:
    for i in range(30):
        await sqlite_queue.enqueue("even" if i % 2 == 0 else "odd", {"i": i})
    for i in range(300):  # newer than every "odd" job: the search finds them all the same
        await sqlite_queue.enqueue("filler", {"i": i})
    async with client(create_app(sqlite_queue)) as http:
        first = (await http.get("/dashboard/jobs")).text
        assert first.count("<tr data-job=") == 25 and "Next page" in first
        odd = (await http.get("/dashboard/jobs", params={"type": "odd"})).text
        assert odd.count("<tr data-job=") == 15 and "Next page" not in odd
        job = await sqlite_queue.enqueue("needle")
        found = (await http.get("/dashboard/jobs", params={"id": job.id})).text
        assert found.count("<tr data-job=") == 1
        missing = (await http.get("/dashboard/jobs", params={"id": "nope"})).text
        assert "No jobs match" in missing


async def test_replay_all_dead_of_a_queue(sqlite_queue: Queue) -> None:
    from ..conformance.helpers import claim_one

    for _ in range(3):
        await sqlite_queue.enqueue("t", queue="q", max_attempts=1)
        running = await claim_one(sqlite_queue.backend, queue="q")
        await sqlite_queue.backend.fail(running.attempt, "boom", retry_in=None)
    async with client(create_app(sqlite_queue)) as http:
        page = await http.get("/dashboard/")
        assert "Replay 3 dead" in page.text
        done = await http.post("/dashboard/queues/q/replay-dead", data={"csrf": token_of(page)})
        assert done.status_code == 303
        assert "replayed 3 dead jobs of queue q" in (await http.get("/dashboard/")).text
    assert (await sqlite_queue.stats("q")).pending == 3


async def test_dashboard_can_be_left_out(sqlite_queue: Queue) -> None:
    async with client(create_app(sqlite_queue, dashboard=False)) as http:
        assert (await http.get("/dashboard/")).status_code == 404

"""The dashboard end to end: headless Chromium, uvicorn on loopback, real jobs, real workers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from queuekit import JobStatus, Queue, Tasks, Worker
from queuekit.api import create_app

from ..conformance.helpers import claim_one
from ..setups import BackendSetup
from ..worker.options import FAST
from .conftest import REBOUND_HOST
from .server import serving

expect = pytest.importorskip("playwright.async_api").expect

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

KEY = "dashboard-key-for-tests"
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
"""Where the README's screenshots live: rewritten only with QUEUEKIT_REFRESH_DOCS=1."""
HOSTILE_IMG = "<img src=x onerror=window.__pwned=1>"  # unquoted: JSON leaves it as is
HOSTILE_SCRIPT = "<script>window.__pwned=1</script>"


async def log_in(page: Page, base: str) -> None:
    await page.goto(f"{base}/dashboard/")
    assert page.url.endswith("/dashboard/login")
    await page.fill("input[name=key]", "wrong")
    await page.click("button[type=submit]")
    assert await page.locator(".flash").inner_text() == "Wrong key."
    await page.fill("input[name=key]", KEY)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/dashboard/")


async def table_scrolls_sideways(page: Page) -> bool:
    """Whether the page's first table scrolls sideways in its box.

    Found and measured in one script, at one instant: dashboard.js swaps a fragment's content
    when its refresh lands (always once, just after the page loads), and a box measured after
    it left the page reads 0 wide, as if it did not scroll."""
    script = (
        "() => { const box = document.querySelector('.scroll');"
        " return box.scrollWidth > box.clientWidth; }"
    )
    return bool(await page.evaluate(script))


async def row_heights(page: Page, rows: str) -> list[float]:
    """The heights of the rows `rows` selects, all read at one instant (see above)."""
    script = "rows => Array.from(document.querySelectorAll(rows), row => row.offsetHeight)"
    return list(await page.evaluate(script, rows))


async def count(page: Page, queue: str, status: str) -> str:
    return await page.locator(f'tr[data-queue="{queue}"] [data-count="{status}"]').inner_text()


async def test_operate_queues_from_the_browser(
    durable_setup: BackendSetup, browser: Browser, tmp_path: Path
) -> None:
    images = DOC_IMAGES if os.environ.get("QUEUEKIT_REFRESH_DOCS") == "1" else tmp_path
    tasks = Tasks()
    broken = {"on": True}
    ran: list[str] = []

    @tasks.task(max_attempts=1)
    async def charge(order: str) -> str:
        if broken["on"]:
            raise RuntimeError(f"card declined for {order}")
        ran.append(order)
        return f"charged {order}"

    server_queue = Queue(durable_setup.make())  # the server's own client of the same store
    async with Queue(durable_setup.make()) as shop:
        first = await shop.enqueue("charge", {"order": "A-1"}, queue="billing", max_attempts=1)
        second = await shop.enqueue("charge", {"order": "A-2"}, queue="billing", max_attempts=1)
        async with Worker(shop, tasks, queues=["billing"], **FAST) as pool:
            for job in (first, second):
                while (await shop.get_job(job.id)).status != JobStatus.DEAD:
                    await anyio.sleep(0.02)
            pool.stop()
        await shop.enqueue("charge", {"order": "later"}, queue="billing", delay=3600)

        with serving(create_app(server_queue, api_key=KEY)) as base:
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            page.on("dialog", lambda dialog: dialog.accept())
            await log_in(page, base)

            # The overview counts what the backend holds.
            assert await count(page, "billing", "dead") == "2"
            assert await count(page, "billing", "pending") == "1"
            if durable_setup.name == "sqlite":
                await page.screenshot(path=str(images / "dashboard-overview.png"))

            # The queue's page charts what the worker wrote as it stopped: 2 enqueued, 2 dead.
            await page.click('tr[data-queue="billing"] th a')
            await page.wait_for_url(f"{base}/dashboard/queues/billing")
            legend = page.locator("figure.chart").first.locator("ul.legend")
            await expect(legend).to_contain_text("dead 2")
            await expect(legend).to_contain_text("enqueued 2")
            assert await page.locator("figure.chart svg polyline").count() == 9
            if durable_setup.name == "sqlite":
                await page.screenshot(path=str(images / "dashboard-queue.png"), full_page=True)
            await page.goto(f"{base}/dashboard/")

            # Dead jobs, one click away; the traceback on the job's page.
            await page.click('tr[data-queue="billing"] [data-count="dead"]')
            await page.wait_for_selector(f'tr[data-job="{first.id}"]')
            assert await page.locator("tr[data-job]").count() == 2
            await page.click(f'tr[data-job="{first.id}"] a')
            error = await page.locator("[data-error]").inner_text()
            assert "RuntimeError: card declined for A-1" in error and "Traceback" in error
            if durable_setup.name == "sqlite":
                await page.screenshot(path=str(images / "dashboard-job.png"), full_page=True)

            # Replay from its button: a running worker picks it up and the page follows.
            broken["on"] = False
            async with Worker(shop, tasks, queues=["billing"], **FAST):
                await page.click("button:has-text('Replay')")
                assert "replayed" in await page.locator(".flash").inner_text()
                assert await shop.result(first.id, timeout=10) == "charged A-1"
                await expect(page.locator("[data-status]")).to_have_text("completed", timeout=8000)
                assert "charged A-1" in await page.locator("[data-result]").inner_text()

                # Bulk replay of the queue's remaining dead job, from the overview.
                await page.goto(f"{base}/dashboard/")
                await page.click("button:has-text('Replay 1 dead')")
                assert "replayed 1 dead" in await page.locator(".flash").inner_text()
                assert await shop.result(second.id, timeout=10) == "charged A-2"

                # Pause stops claims until resumed.
                await page.click('tr[data-queue="billing"] button:has-text("Pause")')
                # The click reloads the page: wait for the new one, not the old one's count.
                await expect(page.locator('[data-paused="true"]')).to_have_count(1)
                await anyio.sleep(3 * FAST["poll_interval"])
                held = await shop.enqueue("charge", {"order": "held"}, queue="billing")
                await anyio.sleep(6 * FAST["poll_interval"])
                assert (await shop.get_job(held.id)).status == JobStatus.PENDING
                await page.click('tr[data-queue="billing"] button:has-text("Resume")')
                await expect(page.locator('[data-paused="false"]')).to_have_count(1)
                assert await shop.result(held.id, timeout=10) == "charged held"
                # The auto-refresh shows the new count without a reload.
                # (without a reload: the CSP forbids eval, so no wait_for_function here)
                completed = page.locator('tr[data-queue="billing"] [data-count="completed"]')
                await expect(completed).to_have_text("3", timeout=8000)
            assert ran == ["A-1", "A-2", "held"]
            await page.close()


async def test_hostile_payload_renders_as_text(tmp_path: Path, browser: Browser) -> None:
    from queuekit.backends.sqlite import SQLiteBackend

    path = str(tmp_path / "jobs.db")
    payload = {"note": HOSTILE_IMG, "script": HOSTILE_SCRIPT}
    async with Queue(SQLiteBackend(path)) as queue:
        job = await queue.enqueue("import", payload, max_attempts=1)
        running = await claim_one(queue.backend)
        await queue.backend.fail(running.attempt, f"ValueError: {HOSTILE_SCRIPT}", retry_in=None)

        with serving(create_app(Queue(SQLiteBackend(path)))) as base:
            page = await browser.new_page()
            await page.goto(f"{base}/dashboard/jobs")
            cell = await page.locator(f'tr[data-job="{job.id}"] td.payload').inner_text()
            assert HOSTILE_IMG in cell
            await page.goto(f"{base}/dashboard/jobs/{job.id}")
            shown = await page.locator("[data-payload]").inner_text()
            assert HOSTILE_IMG in shown and HOSTILE_SCRIPT in shown
            assert HOSTILE_SCRIPT in await page.locator("[data-error]").inner_text()
            assert await page.locator("img").count() == 0
            await anyio.sleep(0.2)  # give a broken image's onerror its chance
            assert await page.evaluate("typeof window.__pwned") == "undefined"
            await page.close()


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/jobs"])
async def test_pages_need_the_key(tmp_path: Path, browser: Browser, path: str) -> None:
    from queuekit.backends.sqlite import SQLiteBackend

    with serving(create_app(Queue(SQLiteBackend(str(tmp_path / "j.db"))), api_key=KEY)) as base:
        page = await browser.new_page()
        await page.goto(base + path)
        assert page.url.endswith("/dashboard/login")
        await page.close()


async def test_the_dashboard_fits_a_phone(tmp_path: Path, browser: Browser) -> None:
    """At 390 px wide the page never scrolls sideways: the tables do, with one-line rows."""
    from queuekit.backends.sqlite import SQLiteBackend

    path = str(tmp_path / "jobs.db")
    async with Queue(SQLiteBackend(path)) as queue:
        for n in range(5):
            note = f"order {n}: " + "a long line of payload text " * 10
            await queue.enqueue("send_invoice_email", {"note": note}, queue="billing-eu-west")
        job = await queue.enqueue("t", {"key": "x" * 300}, unique_key="k" * 200)
    with serving(create_app(Queue(SQLiteBackend(path)))) as base:
        page = await browser.new_page(viewport={"width": 390, "height": 844})
        for where, rows in (("/dashboard/", "tr[data-queue]"), ("/dashboard/jobs", "tr[data-job]")):
            await page.goto(base + where)
            await page.wait_for_selector(rows)
            await page.screenshot(path=str(tmp_path / f"phone{where.replace('/', '-')}.png"))
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390, where
            assert await table_scrolls_sideways(page), where
            heights = await row_heights(page, rows)
            assert heights and max(heights) < 60, (where, heights)
        pages = ("/dashboard/queues/billing-eu-west", "/dashboard/workers", "/dashboard/schedules")
        for where in (f"/dashboard/jobs/{job.id}", *pages):
            await page.goto(base + where)
            await page.screenshot(path=str(tmp_path / f"phone{where.replace('/', '-')}.png"))
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390, where
        await page.close()


def recording(app: ASGIApp, seen: list[dict[str, str]]) -> ASGIApp:
    """`app`, noting each HTTP request's method, path and Origin: proof that it arrived."""

    async def record(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            seen.append({"path": scope["path"], "origin": headers.get("origin", "")})
        await app(scope, receive, send)

    return record


async def test_another_site_cannot_command_a_keyless_server(
    tmp_path: Path, browser: Browser
) -> None:
    """The attack that worked: a page elsewhere POSTs text/plain JSON with `mode: "no-cors"`."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from queuekit.backends.sqlite import SQLiteBackend

    async def cats(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>cute cats</title>")

    attacker_site = Starlette(routes=[Route("/", cats)])

    path = str(tmp_path / "jobs.db")
    seen: list[dict[str, str]] = []
    app = recording(create_app(Queue(SQLiteBackend(path))), seen)
    with serving(app) as target, serving(attacker_site) as attacker:
        page = await browser.new_page()
        await page.goto(attacker.replace("127.0.0.1", "localhost"))  # another origin
        script = """async (target) => {
            const send = (path, body) => fetch(target + path, {
                method: "POST", mode: "no-cors", body,
                headers: {"Content-Type": "text/plain"},
            }).then(() => "sent", (error) => String(error));
            return [
                await send("/v1/jobs", JSON.stringify({type: "evil", payload: {}})),
                await send("/v1/queues/default/pause", ""),
            ];
        }"""
        assert await page.evaluate(script, target) == ["sent", "sent"]
        await page.close()
    posts = [request for request in seen if request["path"].startswith("/v1/")]
    assert [request["path"] for request in posts] == ["/v1/jobs", "/v1/queues/default/pause"]
    assert all(request["origin"].startswith("http://localhost:") for request in posts)
    async with Queue(SQLiteBackend(path)) as queue:
        assert (await queue.list_jobs()).jobs == []
        assert await queue.paused_queues() == set()


async def test_a_rebound_name_reads_nothing(tmp_path: Path, rebinding_browser: Browser) -> None:
    """DNS rebinding: a page at evil.example, now resolving to 127.0.0.1, reads 'its own' URLs."""
    from queuekit.backends.sqlite import SQLiteBackend

    path = str(tmp_path / "jobs.db")
    async with Queue(SQLiteBackend(path)) as queue:
        await queue.enqueue("charge", {"card": "4111 1111 1111 1111"})
    with serving(create_app(Queue(SQLiteBackend(path)))) as base:
        page = await rebinding_browser.new_page()
        for where in ("/v1/jobs", "/dashboard/jobs"):
            response = await page.goto(base.replace("127.0.0.1", REBOUND_HOST) + where)
            assert response is not None and response.status == 400
            assert "4111" not in await page.content()
        response = await page.goto(base + "/v1/jobs")  # the real loopback name still works
        assert response is not None and response.status == 200
        assert "4111" in await page.content()
        await page.close()

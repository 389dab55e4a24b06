"""The dashboard's limits panels and a job's limit key, rendered over HTTP (no browser)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from queuekit import Limits, Queue
from queuekit.api import create_app
from queuekit.backends.memory import MemoryBackend

from ..conformance.helpers import claim_one

KEY = "dashboard-limits-key-0123"
WEEK = 7 * 24 * 3600.0
"""A rate window no test run straddles (windows start at multiples of it)."""


@pytest.fixture
async def memory_queue() -> AsyncIterator[Queue]:
    async with Queue(MemoryBackend()) as queue:
        yield queue


def client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


def panel(page: str, queue: str) -> str:
    """The usage panel of `queue` on a page."""
    found = re.search(rf'<section class="panel" data-limits="{queue}">(.*?)</section>', page, re.S)
    assert found, page
    return found.group(1)


def cell(html: str, name: str) -> str:
    found = re.search(rf"<td[^>]*data-{name}>(.*?)</td>", html, re.S)
    assert found, html
    without_meter = re.sub(r"<meter.*?</meter>", "", found.group(1), flags=re.S)
    return re.sub(r"<[^>]+>", "", without_meter).strip()  # a <time>'s text kept


async def test_a_panel_per_limited_queue(memory_queue: Queue) -> None:
    queue = memory_queue
    await queue.set_limits("payments", Limits(concurrency=2, per_key=1, rate=5, period=WEEK))
    await queue.set_limits("mail", Limits(per_key=3, ordered=True))
    await queue.enqueue("t", queue="plain")
    await queue.enqueue("charge", queue="payments", limit_key="acct_1")
    await claim_one(queue.backend, queue="payments")
    await queue.hold("payments", 60, key="acct_2")
    await queue.hold("payments", 30, key="<b>acct_3</b>")
    await queue.hold("payments", 30)
    async with client(create_app(queue)) as http:
        for path in ("/dashboard/", "/dashboard/fragments/queues"):
            page = await http.get(path)
            assert page.status_code == 200
            text = page.text
            assert text.count('<section class="panel"') == 2  # none for "plain"
            payments = panel(text, "payments")
            assert "concurrency 2 · 1 per key · 5 starts per 604800 s" in payments
            assert cell(payments, "running") == "1 / 2"
            assert '<meter min="0" max="2" value="1">' in payments
            assert cell(payments, "started") == "1 / 5"
            assert cell(payments, "window-ends").endswith(" UTC")
            assert cell(payments, "held-until").endswith(" UTC")
            assert cell(payments, "held-keys") == "2"
            assert "acct_3" not in text  # keys are counted, not listed
            mail = panel(text, "mail")
            assert "3 per key · ordered keys" in mail
            assert cell(mail, "running") == "0" and cell(mail, "held-until") == "—"
            assert "data-started" not in mail  # no rate, no window
            assert 'style="' not in text  # the CSP allows no inline styles


async def test_no_limits_no_panels(memory_queue: Queue) -> None:
    await memory_queue.enqueue("t", queue="plain")
    async with client(create_app(memory_queue)) as http:
        page = (await http.get("/dashboard/")).text
        assert "<h2>Limits</h2>" not in page and 'class="panel"' not in page


async def test_a_job_shows_its_limit_key_as_text(memory_queue: Queue) -> None:
    job = await memory_queue.enqueue("t", limit_key="<script>alert(1)</script>")
    plain = await memory_queue.enqueue("t")
    async with client(create_app(memory_queue)) as http:
        for path in (f"/dashboard/jobs/{job.id}", f"/dashboard/fragments/jobs/{job.id}"):
            page = (await http.get(path)).text
            assert (
                "<tr><th>limit key</th><td>&lt;script&gt;alert(1)&lt;/script&gt;</td></tr>" in page
            )
            assert "<script>alert" not in page
        page = (await http.get(f"/dashboard/jobs/{plain.id}")).text
        assert "<tr><th>limit key</th><td></td></tr>" in page


async def test_the_panels_need_the_login(memory_queue: Queue) -> None:
    await memory_queue.set_limits("payments", Limits(concurrency=2))
    async with client(create_app(memory_queue, api_key=KEY)) as http:
        assert (await http.get("/dashboard/fragments/queues")).status_code == 401
        page = await http.get("/dashboard/", headers={"Accept": "text/html"})
        assert page.status_code == 303 and "payments" not in page.text

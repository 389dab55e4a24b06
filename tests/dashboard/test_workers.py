"""The dashboard's workers page and its drain button, over HTTP (no browser)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from queuekit import Queue, Tasks, Worker
from queuekit.api import create_app
from queuekit.backends.memory import MemoryBackend

from ..waiting import eventually
from ..worker.options import FAST

KEY = "dashboard-workers-key-0123"


@pytest.fixture
async def memory_queue() -> AsyncIterator[Queue]:
    async with Queue(MemoryBackend()) as queue:
        yield queue


def token_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@asynccontextmanager
async def logged_in(queue: Queue) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(queue, api_key=KEY))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        login = await http.get("/dashboard/login")
        done = await http.post("/dashboard/login", data={"key": KEY, "csrf": token_of(login)})
        assert done.status_code == 303
        yield http


async def test_the_workers_page_lists_and_drains_a_worker(memory_queue: Queue) -> None:
    queue = memory_queue
    worker = Worker(
        queue, Tasks(), queues={"mail": 2}, worker_id="web-1", registry_interval=0.2, **FAST
    )
    async with logged_in(queue) as http, worker:
        empty = await http.get("/dashboard/workers")
        assert empty.status_code == 200
        assert 'href="/dashboard/workers"' in empty.text  # in the navigation

        async def listed() -> bool:
            return 'data-worker="web-1"' in (await http.get("/dashboard/fragments/workers")).text

        await eventually(listed, "the worker on the page")
        page = await http.get("/dashboard/workers")
        assert 'data-refresh="/dashboard/fragments/workers"' in page.text
        assert 'data-state="running"' in page.text and ">mail</a> ×2" in page.text
        assert 'action="/dashboard/workers/web-1/drain"' in page.text
        assert 'style="' not in page.text  # the CSP allows no inline styles
        assert "script-src 'self'" in page.headers["content-security-policy"]

        refused = await http.post("/dashboard/workers/web-1/drain", data={"csrf": "forged"})
        assert refused.status_code == 403
        assert not worker.presence.draining
        unknown = await http.post("/dashboard/workers/nobody/drain", data={"csrf": token_of(page)})
        assert unknown.status_code == 404 and "no running worker has id" in unknown.text

        drained = await http.post("/dashboard/workers/web-1/drain", data={"csrf": token_of(page)})
        assert drained.status_code == 303
        assert drained.headers["location"] == "/dashboard/workers"
        after = await http.get("/dashboard/workers")
        assert "worker web-1 asked to drain" in after.text  # the flash message
        assert 'data-state="draining"' in after.text or 'data-worker="web-1"' not in after.text

        async def gone() -> bool:
            return "No worker is running." in (await http.get("/dashboard/fragments/workers")).text

        await eventually(gone, "the drained worker left the page")


async def test_what_workers_say_of_themselves_is_escaped(memory_queue: Queue) -> None:
    hostile = "<script>alert(1)</script>"
    info = {
        "host": hostile,
        "pid": 1,
        "version": hostile,
        "concurrency": 1,
        "queues": {"q": 1},
        "limits": {},
        "running": 1,
        "job_ids": ['"><img src=x>'],
    }
    await memory_queue.backend.beat_worker("w", json.dumps(info), ttl=300)
    async with logged_in(memory_queue) as http:
        page = (await http.get("/dashboard/workers")).text
    assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page

"""The dashboard follows events in Chromium: an enqueue shows on the overview at once, with
every timer of the page stopped, so the 3 s poll cannot be what refreshed it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import queuekit
from queuekit import Queue
from queuekit.api import create_app

from ..setups import BackendSetup
from ..waiting import DEADLINE, eventually
from .server import serving
from .test_browser import KEY, log_in

expect = pytest.importorskip("playwright.async_api").expect

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Response


async def test_the_overview_updates_from_events_without_polling(
    durable_setup: BackendSetup, browser: Browser, tmp_path: Path
) -> None:
    assert durable_setup.url is not None
    async with Queue(durable_setup.make()) as shop:
        await shop.enqueue("send", queue="mail")
        with serving(create_app(queuekit.connect(durable_setup.url), api_key=KEY)) as base:
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            problems: list[str] = []

            def console(message: ConsoleMessage) -> None:
                if "Content Security Policy" in message.text:
                    problems.append(message.text)

            page.on("console", console)
            fetched: list[str] = []
            """The fragment's fetches answered since the latest stream came up."""

            def response(answer: Response) -> None:
                if "/dashboard/events?" in answer.url:
                    fetched.clear()
                elif "/dashboard/fragments/queues" in answer.url:
                    fetched.append(answer.url)

            page.on("response", response)
            await page.clock.install()
            await log_in(page, base)
            pending = page.locator('tr[data-queue="mail"] [data-count="pending"]')
            await expect(pending).to_have_text("1")
            # The stream's headers come once the server subscribed: events are heard from here.
            async with page.expect_response(
                lambda answer: "/dashboard/events?fragment=" in answer.url, timeout=DEADLINE * 1000
            ) as opened:
                await page.reload()
            stream = await opened.value
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            # Once up, the stream refreshes the page (for what changed before it was): wait for
            # that refresh, so the one to come can only be the enqueue's.
            await eventually(lambda: bool(fetched), "the refresh as the stream came up")
            # No timer fires from now on: neither the poll nor a delayed refresh.
            await page.clock.pause_at(await page.evaluate("Date.now()") + 1000)
            fetched.clear()

            await shop.enqueue_many([queuekit.new_job("send", queue="mail") for _ in range(2)])
            await expect(pending).to_have_text("3", timeout=DEADLINE * 1000)
            assert fetched  # the page fetched its fragment, told by the stream
            await page.screenshot(path=str(tmp_path / "live-overview.png"))
            assert (tmp_path / "live-overview.png").stat().st_size > 0
            assert problems == []
            await page.close()

"""The job page's table of attempts in Chromium: it fits a phone, and an error opens whole."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from queuekit import JobStatus, Queue
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend

from ..conformance.helpers import claim_one
from .server import serving

expect = pytest.importorskip("playwright.async_api").expect

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest.mark.parametrize("width", [1280, 390])
async def test_the_attempts_table_fits_and_opens_each_error(
    tmp_path: Path, browser: Browser, width: int
) -> None:
    path = str(tmp_path / "jobs.db")
    error = "RuntimeError: " + "a long message without a break " * 12 + "\nTraceback: the end"
    async with Queue(SQLiteBackend(path)) as queue:
        job = await queue.enqueue("t", max_attempts=3)
        for _ in range(2):
            failed = await claim_one(queue.backend)
            await queue.backend.fail(failed.attempt, error, retry_in=0.0)
        done = await claim_one(queue.backend)
        assert await queue.backend.complete(done.attempt) == JobStatus.COMPLETED
    with serving(create_app(Queue(SQLiteBackend(path)))) as base:
        page = await browser.new_page(viewport={"width": width, "height": 844})
        await page.goto(f"{base}/dashboard/jobs/{job.id}")
        rows = page.locator("[data-history] tr[data-attempt]")
        await expect(rows).to_have_count(3)
        await page.screenshot(path=str(tmp_path / f"attempts-{width}.png"), full_page=True)
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await expect(rows.nth(2).locator(".status")).to_have_text("completed")
        full = rows.first.locator("pre.error")
        await expect(full).to_be_hidden()
        await rows.first.locator("summary").click()
        await expect(full).to_be_visible()
        await expect(full).to_contain_text("Traceback: the end")
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await page.close()

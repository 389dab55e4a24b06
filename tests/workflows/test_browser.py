"""The workflow page and a job's parents and children in Chromium, at a desktop's and a
phone's width: the tree and its links fit without scrolling sideways."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from queuekit import OnFailure, Parent, Queue, chain, group, new_job
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend

from ..dashboard.conftest import browser
from ..dashboard.server import serving
from ..dashboard.test_browser import DOC_IMAGES

expect = pytest.importorskip("playwright.async_api").expect

if TYPE_CHECKING:
    from playwright.async_api import Browser

__all__ = ["browser"]


@pytest.mark.parametrize("width", [1280, 390])
async def test_the_workflow_tree_and_a_jobs_relations_fit(
    tmp_path: Path, browser: Browser, width: int
) -> None:
    path = str(tmp_path / "jobs.db")
    fetch = new_job("fetch_prices_from_the_supplier", id="fetch-prices-from-the-supplier-0001")
    left = new_job("convert_currency", after=[fetch])
    right = new_job("check_stock_levels", after=[fetch])
    merge = new_job("publish_catalogue", after=[left, Parent(right.id, OnFailure.RUN)])
    tail = chain(*(new_job(f"step_{n}") for n in range(12)))
    flow = chain(group(fetch, left, right, merge), tail).with_id("catalogue-2026-11")
    async with Queue(SQLiteBackend(path)) as queue:
        await queue.enqueue_many(flow)
    with serving(create_app(Queue(SQLiteBackend(path)))) as base:
        page = await browser.new_page(viewport={"width": width, "height": 844})
        await page.goto(f"{base}/dashboard/workflows/catalogue-2026-11")
        nodes = page.locator("[data-tree] li[data-job]")
        await expect(nodes).to_have_count(len(flow))
        await expect(nodes.first.locator("[data-status]")).to_have_text("pending")
        refresh = os.environ.get("QUEUEKIT_REFRESH_DOCS") == "1" and width == 1280
        shot = DOC_IMAGES / "dashboard-workflow.png" if refresh else tmp_path / f"wf-{width}.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert await page.evaluate("document.documentElement.scrollWidth") <= width

        also = page.locator(f'li[data-job="{merge.id}"] [data-also] a')
        await expect(also).to_have_text("check_stock_levels")
        await also.click()
        await expect(page).to_have_url(f"{base}/dashboard/jobs/{right.id}")
        await expect(page.locator("[data-parents] li")).to_have_count(1)
        await expect(page.locator("[data-children] li")).to_have_count(1)
        await expect(page.locator("[data-children] li .status")).to_have_text("waiting")
        await page.screenshot(path=str(tmp_path / f"job-{width}.png"), full_page=True)
        assert await page.evaluate("document.documentElement.scrollWidth") <= width

        await page.goto(f"{base}/dashboard/jobs/{merge.id}")
        parents = page.locator("[data-parents] li")
        await expect(parents).to_have_count(2)
        await expect(parents.nth(1)).to_contain_text("on failure: run")
        await page.locator("[data-workflow] a").click()
        await expect(page).to_have_url(f"{base}/dashboard/workflows/catalogue-2026-11")
        await page.close()

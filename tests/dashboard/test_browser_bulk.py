"""The jobs page's bulk actions in Chromium: select jobs and run them now (a worker runs them),
cancel everything a filter matches after its confirm dialog, and fit a 390 px phone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from queuekit import JobStatus, Queue, Tasks, Worker
from queuekit.api import create_app

from ..setups import BackendSetup
from ..waiting import eventually
from ..worker.options import FAST
from .server import serving
from .test_browser import KEY, log_in, table_scrolls_sideways

expect = pytest.importorskip("playwright.async_api").expect

if TYPE_CHECKING:
    from playwright.async_api import Browser, Dialog

HOUR = 3600


async def test_bulk_actions_from_the_browser(
    durable_setup: BackendSetup, browser: Browser, tmp_path: Path
) -> None:
    tasks = Tasks()
    ran: list[int] = []

    @tasks.task()
    async def render(n: int) -> int:
        ran.append(n)
        return n

    server_queue = Queue(durable_setup.make())
    async with Queue(durable_setup.make()) as shop:
        soon = [await shop.enqueue("render", {"n": n}, queue="lane", delay=HOUR) for n in range(3)]
        other = [await shop.enqueue("render", {"n": n}, queue="other", delay=HOUR) for n in (8, 9)]
        with serving(create_app(server_queue, api_key=KEY)) as base:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await log_in(page, base)

            # Select two delayed jobs and run them now: the idle worker runs them.
            async with Worker(shop, tasks, queues=["lane"], **FAST):
                await page.goto(f"{base}/dashboard/jobs?queue=lane")
                for job in soon[:2]:
                    await page.check(f'tr[data-job="{job.id}"] input[name=job]')
                await expect(page.locator("[data-selected-count]")).to_have_text("2")
                await page.screenshot(path=str(tmp_path / "jobs-selected-1280.png"))
                await page.click("form[data-selection] button[value=run-now]")
                flash = page.locator(".flash")
                await expect(flash).to_have_text("made due now 2 of 2 selected jobs")
                assert page.url == f"{base}/dashboard/jobs?queue=lane"

                async def both_ran() -> bool:
                    return sorted(ran) == [0, 1]

                await eventually(both_ran, "the worker ran the two jobs made due")
            assert (await shop.get_job(soon[2].id)).status == JobStatus.PENDING
            for job in soon[:2]:
                assert (await shop.get_job(job.id)).status == JobStatus.COMPLETED

            # Cancel everything matching queue "other": refused at the dialog, then accepted.
            await page.goto(f"{base}/dashboard/jobs?queue=other")
            asked: list[str] = []

            async def dismiss(dialog: Dialog) -> None:
                asked.append(dialog.message)
                await dialog.dismiss()

            page.once("dialog", dismiss)
            await page.click("form[data-matching] button[value=cancel]")
            await expect(page.locator(".flash")).to_have_count(0)
            assert asked == ["Cancel every unfinished job matching queue other?"]
            assert {(await shop.get_job(job.id)).status for job in other} == {JobStatus.PENDING}

            async def accept(dialog: Dialog) -> None:
                asked.append(dialog.message)
                await dialog.accept()

            page.once("dialog", accept)
            await page.click("form[data-matching] button[value=cancel]")
            await expect(page.locator(".flash")).to_have_text(
                "cancelled 2 jobs matching queue other"
            )
            assert len(asked) == 2
            assert {(await shop.get_job(job.id)).status for job in other} == {JobStatus.CANCELLED}
            await page.screenshot(path=str(tmp_path / "jobs-cancelled-1280.png"), full_page=True)
            await page.close()

            # At 390 px the page never scrolls sideways: the table scrolls in its box.
            phone = await browser.new_page(viewport={"width": 390, "height": 844})
            await log_in(phone, base)
            await phone.goto(f"{base}/dashboard/jobs")
            await phone.wait_for_selector("tr[data-job]")
            await phone.screenshot(path=str(tmp_path / "jobs-390.png"), full_page=True)
            assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
            assert await table_scrolls_sideways(phone)
            for bar in ("form.search", "form[data-selection]", "form[data-matching]"):
                box = await phone.locator(bar).bounding_box()
                assert box is not None and box["x"] + box["width"] <= 390, bar
            await phone.goto(f"{base}/dashboard/jobs/{soon[2].id}")
            assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
            await phone.click("button:has-text('Run now')")
            await expect(phone.locator(".flash")).to_contain_text("due now")
            await phone.screenshot(path=str(tmp_path / "job-run-now-390.png"), full_page=True)
            assert (await shop.get_job(soon[2].id)).scheduled_at < soon[2].scheduled_at
            await phone.close()
    assert (tmp_path / "jobs-390.png").stat().st_size > 0

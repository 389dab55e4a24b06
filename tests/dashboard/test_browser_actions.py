"""Every dashboard page and every action in Chromium, at 1280 px and at a 390 px phone: each
action's effect read back from the backend, no page wider than its window, times shown in the
viewer's time zone, and a screenshot of each page (light, then dark) in the test's scratch
folder (tmp_path: nothing tracked is written)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from queuekit import JobStatus, Limits, Queue, Schedule, Tasks, Worker
from queuekit.activity import depths
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.errors import JobNotFoundError
from queuekit.job import Job
from queuekit.progress import ProgressUpdate

from ..conformance.helpers import claim_one
from ..waiting import DEADLINE, eventually
from ..worker.options import FAST
from .server import serving
from .test_browser import KEY, log_in

expect = pytest.importorskip("playwright.async_api").expect

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

HOUR = 3600
ZONE = "Asia/Kolkata"
"""The browser's time zone: UTC+05:30, so a local time differs from UTC in hours and minutes."""
BULK = ("replay", "run-now", "cancel", "delete")
WAIT = DEADLINE * 1000
"""Milliseconds an expectation may wait: only ever spent on a failure."""

tasks = Tasks()


@tasks.task()
async def tick() -> None:
    pass


async def dead_job(queue: Queue, name: str) -> Job:
    """A job of `name` that failed its only attempt."""
    job = await queue.enqueue("t", queue=name, max_attempts=1)
    running = await claim_one(queue.backend, queue=name)
    await queue.backend.fail(running.attempt, "RuntimeError: boom", retry_in=None)
    return job


async def job_for(queue: Queue, name: str, action: str) -> Job:
    """A job that `action` changes: dead to replay, delayed to run now, pending otherwise."""
    if action == "replay":
        return await dead_job(queue, name)
    return await queue.enqueue("t", queue=name, delay=HOUR if action == "run-now" else None)


async def acted_on(queue: Queue, job: Job, action: str) -> bool:
    """Whether `action` did to `job` what it does."""
    try:
        now = await queue.get_job(job.id)
    except JobNotFoundError:
        return action == "delete"
    if action == "replay":
        return now.status == JobStatus.PENDING
    if action == "run-now":
        return now.status == JobStatus.PENDING and now.scheduled_at < job.scheduled_at
    return action == "cancel" and now.status == JobStatus.CANCELLED


async def fits(page: Page, width: int, shots: Path, name: str) -> None:
    """Screenshot the whole page, and check it does not scroll sideways."""
    await page.wait_for_load_state()  # its stylesheet applied, not only its elements there
    assert await page.evaluate("document.documentElement.scrollWidth") <= width, name
    shot = shots / f"{name}-{width}.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert int.from_bytes(shot.read_bytes()[16:20], "big") == width, name  # the PNG's width


async def flashed(page: Page, text: str) -> None:
    await expect(page.locator(".flash")).to_contain_text(text, timeout=WAIT)


@pytest.mark.parametrize("width", [1280, 390])
async def test_every_page_and_action(tmp_path: Path, browser: Browser, width: int) -> None:
    path = str(tmp_path / "jobs.db")
    shots = tmp_path / "shots"
    shots.mkdir()
    async with Queue(SQLiteBackend(path)) as shop:
        # One job per single-job action, a tracked job with attempts and progress.
        one = {action: await job_for(shop, "one", action) for action in BULK}
        tracked = await shop.enqueue("t", {"order": "A-7"}, queue="tracked", max_attempts=3)
        for _ in range(2):
            failed = await claim_one(shop.backend, queue="tracked")
            await shop.backend.fail(failed.attempt, "TimeoutError: upstream", retry_in=0.0)
        running = await claim_one(shop.backend, queue="tracked")
        update = ProgressUpdate(0.25, "a quarter done", None)
        await shop.backend.heartbeat(
            [running.attempt], lease=HOUR, progress={running.attempt: update}
        )
        # Three jobs per bulk action on a selection (two selected), two per filter.
        chosen = {a: [await job_for(shop, f"sel-{a}", a) for _ in range(3)] for a in BULK}
        matching = {a: [await job_for(shop, f"all-{a}", a) for _ in range(2)] for a in BULK}
        await dead_job(shop, "graveyard")
        await shop.enqueue("t", queue="pausable")
        await shop.set_limits("limited", Limits(concurrency=2, rate=5, period=60))
        await shop.activity_recorder.write()  # what the enqueues counted: the charts' minutes

        ticker = Schedule.every(timedelta(minutes=1), name="ticker").job("tick", queue="ticks")
        worker_queue = Queue(SQLiteBackend(path))
        worker = Worker(
            worker_queue,
            tasks,
            queues=["ticks"],
            schedules=[ticker],
            worker_id="web-1",
            registry_interval=0.1,
            **FAST,
        )
        with serving(create_app(Queue(SQLiteBackend(path)), api_key=KEY)) as base:
            context = await browser.new_context(
                viewport={"width": width, "height": 844}, timezone_id=ZONE
            )
            context.set_default_timeout(WAIT)
            page = await context.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            dashboard = f"{base}/dashboard"

            await log_in(page, base)
            await fits(page, width, shots, "overview")
            await expect(page.locator('[data-limits="limited"]')).to_contain_text(
                "concurrency 2", timeout=WAIT
            )

            # Pause and resume a queue, replay a queue's dead jobs: from the overview.
            row = page.locator('tr[data-queue="pausable"]')
            await row.locator("button:has-text('Pause')").click()
            await expect(row.locator('[data-paused="true"]')).to_have_count(1, timeout=WAIT)
            assert await shop.paused_queues() == {"pausable"}
            await row.locator("button:has-text('Resume')").click()
            await expect(row.locator('[data-paused="false"]')).to_have_count(1, timeout=WAIT)
            assert await shop.paused_queues() == set()
            await page.click('tr[data-queue="graveyard"] button:has-text("Replay 1 dead")')
            await flashed(page, "replayed 1 dead jobs of queue graveyard")
            assert (await shop.stats("graveyard")).pending == 1

            # A queue's page: three charts, the depth its minute sampled, times in the zone.
            await page.click('tr[data-queue="sel-cancel"] th a')
            await page.wait_for_url(f"{dashboard}/queues/sel-cancel")
            assert await page.locator("figure.chart").count() == 3
            # (3 ready jobs, unless the recorder wrote in the midst of the setup: the sample is
            # the minute's first write's)
            latest = depths(await shop.activity("sel-cancel"))[-1]
            assert latest is not None
            depth = page.locator('figure[data-chart="depth"] ul.legend')
            await expect(depth).to_contain_text(f"ready jobs {latest}", timeout=WAIT)
            end = page.locator('figure[data-chart="depth"] text[data-local="clock"]').last
            at = datetime.fromisoformat(str(await end.get_attribute("data-at")))
            local_end = at.astimezone(ZoneInfo(ZONE)).strftime("%H:%M")
            await expect(end).to_have_text(local_end, timeout=WAIT)
            await fits(page, width, shots, "queue")
            await page.click(".spans a:has-text('6h')")
            await expect(page.locator(".spans strong")).to_have_text("6h", timeout=WAIT)

            # The jobs page's search, every filter filled in.
            await page.goto(f"{dashboard}/jobs")
            search = page.locator("form.search")
            await search.locator("input[name=queue]").fill("sel-replay")
            await search.locator("select[name=status]").select_option("dead")
            await search.locator("input[name=type]").fill("t")
            await search.locator("input[name=error]").fill("boom")
            await search.locator("input[name=since]").fill("1h")
            await search.locator("button[type=submit]").click()
            await expect(page.locator("tr[data-job]")).to_have_count(3, timeout=WAIT)
            assert "error=boom" in page.url
            # A relative time's title is its moment in the viewer's zone.
            first = chosen["replay"][0]
            title = await page.locator(f'tr[data-job="{first.id}"] [data-created]').get_attribute(
                "title"
            )
            local = first.created_at.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S")
            assert str(title).startswith(local), title
            await fits(page, width, shots, "jobs-search")

            # Each bulk action on two selected jobs of three: the third is left as it was.
            for action, jobs in chosen.items():
                await page.goto(f"{dashboard}/jobs?queue=sel-{action}")
                for job in jobs[:2]:
                    await page.check(f'tr[data-job="{job.id}"] input[name=job]')
                await expect(page.locator("[data-selected-count]")).to_have_text("2", timeout=WAIT)
                await page.click(f"form[data-selection] button[value={action}]")
                await flashed(page, " 2 of 2 selected jobs")
                assert [await acted_on(shop, job, action) for job in jobs] == [True, True, False]
            await fits(page, width, shots, "jobs-selected")

            # Each bulk action on every job its filter matches (each asks first).
            for action, jobs in matching.items():
                await page.goto(f"{dashboard}/jobs?queue=all-{action}")
                await page.click(f"form[data-matching] button[value={action}]")
                await flashed(page, f" 2 jobs matching queue all-{action}")
                assert [await acted_on(shop, job, action) for job in jobs] == [True, True]
            await fits(page, width, shots, "jobs-matching")

            # Each action on one job, from its page.
            for action, job in one.items():
                await page.goto(f"{dashboard}/jobs/{job.id}")
                await page.click(f"form[action$='/{action}'] button")
                await flashed(page, f"job {job.id}")
                assert await acted_on(shop, job, action), action
            await fits(page, width, shots, "job-deleted")

            # A running job's page: its progress, its failed attempts, times in the zone.
            await page.goto(f"{dashboard}/jobs/{tracked.id}")
            await expect(page.locator("[data-progress]")).to_contain_text(
                "25.0% · a quarter", timeout=WAIT
            )
            await expect(page.locator("[data-history] tr[data-attempt]")).to_have_count(
                2, timeout=WAIT
            )
            created = page.locator('tr:has(th:text-is("created at")) time')
            local = tracked.created_at.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S")
            await expect(created).to_contain_text(local, timeout=WAIT)
            assert str(await created.get_attribute("title")).endswith(" UTC")
            await fits(page, width, shots, "job")

            async with worker_queue, worker:

                async def listed() -> bool:
                    return [w.worker_id for w in await shop.backend.list_workers()] == ["web-1"]

                await eventually(listed, "the worker in the registry")
                await page.goto(f"{dashboard}/schedules")
                await expect(page.locator('tr[data-schedule="ticker"]')).to_contain_text(
                    "ticks", timeout=WAIT
                )
                await fits(page, width, shots, "schedules")

                # Drain the worker: it finishes what it runs, then leaves.
                await page.goto(f"{dashboard}/workers")
                await expect(page.locator('tr[data-worker="web-1"]')).to_have_count(1, timeout=WAIT)
                await fits(page, width, shots, "workers")
                await page.click('tr[data-worker="web-1"] button:has-text("Drain")')
                await flashed(page, "worker web-1 asked to drain")

                async def drained() -> bool:
                    return worker.presence.draining

                await eventually(drained, "the worker heard it should drain")

            # Every page again in dark mode.
            await page.emulate_media(color_scheme="dark")
            tour: dict[str, str] = {
                "overview": "/",
                "queue": "/queues/sel-cancel",
                "jobs": "/jobs?queue=sel-cancel",
                "job": f"/jobs/{tracked.id}",
                "workers": "/workers",
                "schedules": "/schedules",
            }
            for name, where in tour.items():
                await page.goto(dashboard + where)
                await fits(page, width, shots, f"{name}-dark")

            # Log out: the pages ask for the key again.
            await page.click("header button:has-text('Log out')")
            await page.wait_for_url(f"{dashboard}/login")
            await page.goto(f"{dashboard}/jobs")
            assert page.url == f"{dashboard}/login"
            await fits(page, width, shots, "login-dark")
            await context.close()
    assert len(list(shots.glob(f"*-{width}.png"))) == 16

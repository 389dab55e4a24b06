"""The schedules a worker fires are listed (library, API, CLI, dashboard) from its registry
entry: next run, last fire and its job, skipped slots; replicas' reports merged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import anyio
import httpx

import queuekit
from queuekit import Queue, Schedule, Tasks, Worker
from queuekit.api import create_app
from queuekit.registry import ScheduleInfo, list_schedules, merged

from ..cli.test_cli import ok_json
from ..setups import BackendSetup
from ..waiting import eventually
from .options import FAST

tasks = Tasks()


@tasks.task()
async def tick() -> None:
    pass


def every_minute() -> Schedule:
    return Schedule.every(timedelta(minutes=1), name="ticker").job("tick")


async def test_two_replicas_firing_a_schedule_list_it_once(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    beats = 0.05
    async with (
        queuekit.connect(url) as one,
        queuekit.connect(url) as two,
        Worker(one, tasks, schedules=[every_minute()], worker_id="w-1", registry_interval=beats),
        Worker(two, tasks, schedules=[every_minute()], worker_id="w-2", registry_interval=beats),
    ):
        found: list[ScheduleInfo] = []

        async def listed() -> bool:
            found[:] = await list_schedules(one.backend)
            fired = len(found) == 1 and found[0].last_job_id is not None
            return fired and len(found[0].workers) == 2

        await eventually(listed, "both replicas report the fired schedule")
        (ticker,) = found
        assert (ticker.name, ticker.type, ticker.queue) == ("ticker", "tick", "default")
        assert ticker.trigger and ticker.workers == ("w-1", "w-2")
        assert ticker.next_run is not None and ticker.last_slot is not None
        # A replica that has not yet seen the slot fired still reports it as its next.
        assert ticker.next_run >= ticker.last_slot
        assert ticker.last_job_id is not None
        assert (await one.get_job(ticker.last_job_id)).type == "tick"

        # The same, through the API, the CLI and the dashboard.
        transport = httpx.ASGITransport(app=create_app(one))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            body = (await http.get("/v1/schedules")).json()
            assert [s["name"] for s in body["schedules"]] == ["ticker"]
            assert body["schedules"][0]["last_job_id"] == ticker.last_job_id
            workers = (await http.get("/v1/workers")).json()["workers"]
            assert {w["schedules"][0]["name"] for w in workers} == {"ticker"}
            page = await http.get("/dashboard/schedules")
            assert 'data-schedule="ticker"' in page.text
            link = quote(ticker.last_job_id, safe="")
            assert f'href="/dashboard/jobs/{link}"' in page.text
        printed = await anyio.to_thread.run_sync(lambda: ok_json("schedules", url=url))
        assert [s["name"] for s in printed] == ["ticker"]


async def test_no_schedule_is_listed_without_a_worker_firing_one(queue: Queue) -> None:
    assert await list_schedules(queue.backend) == []
    async with Worker(queue, tasks, **FAST):
        assert await list_schedules(queue.backend) == []


def test_replicas_reports_merge_into_one() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    old = ScheduleInfo(
        "s", "t", "q", "every 1m", now, now - timedelta(minutes=2), "a", 0, None, None
    )
    new = ScheduleInfo(
        "s", "t", "q", "every 1m", now + timedelta(minutes=1), now - timedelta(minutes=1), "b", 3,
        "overlap at 2026-11-29T11:58:00+00:00", "boom",
    )  # fmt: skip
    (one,) = merged([("w-2", new), ("w-1", old)])
    assert (one.next_run, one.last_slot, one.last_job_id) == (now, new.last_slot, "b")
    assert (one.skipped_slots, one.last_skip, one.last_error) == (3, new.last_skip, "boom")
    assert one.workers == ("w-1", "w-2")

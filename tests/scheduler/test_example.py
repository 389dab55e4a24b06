"""examples/scheduled_app.py: a scheduler in a Starlette lifespan; two replicas, one job a slot."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from examples.scheduled_app import create_app

from .helpers import assert_consecutive_or_stood_in, parse_slot


async def get(app: Starlette, path: str) -> Any:
    # ASGITransport does not run the lifespan: the test enters it itself, as a server would.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get(path)
    assert response.status_code == 200
    return response.json()


async def test_two_replicas_of_the_app_fire_each_slot_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="queuekit.scheduler")
    url = f"sqlite:///{tmp_path / 'scheduled.db'}"
    period = timedelta(seconds=0.2)
    one, two = create_app(url, heartbeat_every=period), create_app(url, heartbeat_every=period)
    async with one.router.lifespan_context(one), two.router.lifespan_context(two):
        with anyio.fail_after(20):
            while (
                len(heartbeats := [j for j in await get(one, "/jobs") if j["type"] == "heartbeat"])
                < 5
            ):
                await anyio.sleep(0.05)
        schedules = [await get(app, "/schedules") for app in (one, two)]

    prefix = "schedule:heartbeat:"
    slots = sorted(parse_slot(job["id"][len(prefix) :]) for job in heartbeats)
    assert len(set(slots)) == len(slots)
    assert_consecutive_or_stood_in(slots, period, caplog)
    for heartbeat, nightly in schedules:
        assert heartbeat["name"] == "heartbeat" and heartbeat["last_fire"] is not None
        assert heartbeat["last_error"] is None
        assert nightly["schedule"].startswith("nightly_report:cron:0_3_x_x_x:Europe.Berlin")
        assert nightly["next_run"] is not None
    assert sum(heartbeat["fired_here"] for heartbeat, _ in schedules) >= len(slots)

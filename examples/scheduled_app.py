"""A scheduler embedded in an ASGI app's lifespan.

Run as many replicas as you like: each fires the same schedules, and each slot still becomes
exactly one job. A worker (any process running `queuekit.Worker` with these task names) runs
the jobs.

Run: QUEUEKIT_URL=sqlite:///scheduled.db uvicorn examples.scheduled_app:app
     curl localhost:8000/schedules
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import queuekit
from queuekit import Scheduler, ScheduleState


def create_app(url: str, *, heartbeat_every: timedelta = timedelta(minutes=1)) -> Starlette:
    queue = queuekit.connect(url)
    scheduler = Scheduler(queue)
    scheduler.every(heartbeat_every, name="heartbeat").job("heartbeat", {"service": "web"})
    scheduler.cron("0 3 * * *", tz="Europe/Berlin", jitter=timedelta(minutes=5)).job(
        "nightly_report", {"format": "pdf"}, queue="reports"
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The scheduler runs beside the app's requests, and stops with it.
        async with queue, scheduler:
            yield

    async def schedules(request: Request) -> JSONResponse:
        return JSONResponse([_describe(state) for state in scheduler.schedules])

    async def jobs(request: Request) -> JSONResponse:
        page = await queue.list_jobs(limit=1000)
        return JSONResponse(
            [{"id": job.id, "type": job.type, "status": job.status} for job in page.jobs]
        )

    return Starlette(
        routes=[Route("/schedules", schedules), Route("/jobs", jobs)], lifespan=lifespan
    )


def _describe(state: ScheduleState) -> dict[str, Any]:
    last = state.last_fire
    return {
        "name": state.name,
        "schedule": state.schedule.describe(),
        "next_run": _iso(state.next_run),
        "last_fire": None if last is None else {"slot": _iso(last.slot), "job_id": last.job_id},
        "fired_here": state.fired,
        "skipped": state.skipped_slots,
        "last_error": state.last_error,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


app = create_app(
    os.environ.get("QUEUEKIT_URL", "sqlite:///scheduled.db"),
    heartbeat_every=timedelta(seconds=float(os.environ.get("HEARTBEAT_SECONDS", "60"))),
)

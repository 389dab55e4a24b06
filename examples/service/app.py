"""A small ASGI app that enqueues a job from a request handler.

Run: QUEUEKIT_URL=sqlite:///service.db uvicorn examples.service.app:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import queuekit

from .tasks import send_welcome_email

queue = queuekit.connect(os.environ.get("QUEUEKIT_URL", "sqlite:///service.db"))


async def signup(request: Request) -> JSONResponse:
    body = await request.json()
    job = await send_welcome_email.enqueue(queue, email=body["email"], name=body["name"])
    return JSONResponse({"job_id": job.id}, status_code=202)


async def job_status(request: Request) -> JSONResponse:
    try:
        job = await queue.get_job(request.path_params["job_id"])
    except queuekit.JobNotFoundError:
        return JSONResponse({"error": "no such job"}, status_code=404)
    return JSONResponse({"status": job.status, "result": job.result, "attempts": job.attempts})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with queue:
        yield


app = Starlette(
    routes=[Route("/signup", signup, methods=["POST"]), Route("/jobs/{job_id}", job_status)],
    lifespan=lifespan,
)

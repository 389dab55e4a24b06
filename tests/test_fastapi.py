"""The ASGI integration (`queuekit.asgi`, `queuekit.fastapi`) and examples/fastapi_app.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import queuekit
from queuekit import InvalidOptionError, JobStatus, Queue, Scheduler, Tasks, Worker
from queuekit.asgi import get_queue
from queuekit.fastapi import QueueDep, lifespan

from .setups import BackendSetup
from .test_examples import ROOT, free_port
from .waiting import DEADLINE, eventually
from .worker.options import FAST


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` while its lifespan runs (httpx's ASGI transport runs no lifespan)."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as client,
    ):
        yield client


async def test_handlers_enqueue_and_the_lifespan_worker_runs_the_jobs(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task()
    async def double(n: int) -> int:
        return 2 * n

    app = FastAPI(lifespan=lifespan(queue, Worker(queue, tasks, **FAST)))

    @app.post("/double/{n}")
    async def enqueue_double(n: int, queue: QueueDep) -> str:
        return (await double.enqueue(queue, n=n)).id

    @app.get("/results/{job_id}")
    async def result(job_id: str, queue: QueueDep) -> Any:
        return await queue.result(job_id, timeout=DEADLINE)

    async with serving(app) as client:
        job_id = (await client.post("/double/21")).json()
        assert (await client.get(f"/results/{job_id}")).json() == 42
        assert app.state.queue is queue


async def test_leaving_the_lifespan_lets_running_jobs_finish() -> None:
    tasks = Tasks()
    started = anyio.Event()

    @tasks.task()
    async def short() -> str:
        started.set()
        await anyio.sleep(0.3)
        return "finished"

    async with queuekit.connect("memory://") as queue:
        app = Starlette(lifespan=lifespan(queue, Worker(queue, tasks, shutdown_timeout=10, **FAST)))
        async with serving(app):
            job = await short.enqueue(queue)
            with anyio.fail_after(DEADLINE):
                await started.wait()
        assert (await queue.get_job(job.id)).status == JobStatus.COMPLETED


async def test_plain_starlette_gets_the_queue_and_runs_a_scheduler() -> None:
    async def heartbeats(request: Request) -> JSONResponse:
        page = await get_queue(request).list_jobs(type="heartbeat")
        return JSONResponse(len(page.jobs))

    queue = queuekit.connect("memory://")
    scheduler = Scheduler(queue)
    scheduler.every(timedelta(seconds=0.05), name="heartbeat").job("heartbeat")
    app = Starlette(routes=[Route("/heartbeats", heartbeats)], lifespan=lifespan(queue, scheduler))

    async with serving(app) as client:

        async def fired() -> bool:
            return bool((await client.get("/heartbeats")).json())

        await eventually(fired, "the scheduler in the lifespan fired a heartbeat")


async def test_a_handler_outside_the_lifespan_is_told_why() -> None:
    app = FastAPI()

    @app.get("/")
    async def index(queue: QueueDep) -> None:
        pass

    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        with pytest.raises(RuntimeError, match="no queue on app"):
            await client.get("/")


def test_a_worker_on_another_queue_is_refused() -> None:
    worker = Worker(queuekit.connect("memory://"), Tasks())
    with pytest.raises(InvalidOptionError, match="on the queue it is given"):
        lifespan(queuekit.connect("memory://"), worker)


async def run_example(url: str, tmp_path: Path) -> None:
    """Serve examples/fastapi_app.py on `url` with uvicorn; count words through its API."""
    port = free_port()
    errors = tmp_path / "uvicorn.err"
    serve = ["uvicorn", "examples.fastapi_app:app", "--port", str(port), "--no-access-log"]
    with errors.open("w") as stderr:
        web = subprocess.Popen(
            [sys.executable, "-m", *serve],
            cwd=ROOT,
            env={**os.environ, "QUEUEKIT_URL": url, "PYTHONPATH": str(ROOT)},
            stderr=stderr,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

                async def listening() -> bool:
                    try:
                        await client.get("/jobs/nope")
                    except httpx.ConnectError:
                        return False
                    return True

                # uvicorn listens only once the lifespan (queue and worker) has started.
                await eventually(listening, "the app listened")
                response = await client.post("/word-counts", json={"text": "to be or not to be"})
                assert response.status_code == 202
                job_url = f"/jobs/{response.json()['job_id']}"

                async def completed() -> bool:
                    return bool((await client.get(job_url)).json()["status"] == "completed")

                await eventually(completed, "the worker in the lifespan ran the job")
                state = (await client.get(job_url)).json()
                assert state["result"] == {"to": 2, "be": 2, "or": 1, "not": 1}
                assert state["attempts"] == 1
                assert (await client.get("/jobs/nope")).status_code == 404
        finally:
            web.send_signal(signal.SIGTERM)
            # uvicorn shuts down gracefully, then exits by the signal it caught.
            assert web.wait(timeout=DEADLINE) in (0, -signal.SIGTERM)
    log = errors.read_text()
    # The lifespan shut down (worker drained, queue closed) without an error.
    assert "Application shutdown complete." in log and "Traceback" not in log, log


@pytest.mark.slow
async def test_fastapi_example_on_memory(tmp_path: Path) -> None:
    await run_example("memory://", tmp_path)


@pytest.mark.slow
async def test_fastapi_example_on_durable_backends(
    durable_setup: BackendSetup, tmp_path: Path
) -> None:
    assert durable_setup.url is not None
    await run_example(durable_setup.url, tmp_path)

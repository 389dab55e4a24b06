"""Prometheus metrics, checked by scraping: the app's /metrics, the worker's own port, the CLI."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest

import queuekit
from queuekit import Queue, Tasks, Worker
from queuekit.api import create_app

from ..cli.test_cli import FAST_WORKER, QUEUEKIT, ROOT
from ..worker.options import FAST

prometheus = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from queuekit.metrics import Metrics  # noqa: E402

KEY = "metrics-test-key-0123"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_worker_hooks_enqueues_and_stats_scraped_from_the_app(queue: Queue) -> None:
    metrics = Metrics()
    assert metrics.instrument(metrics.instrument(queue)) is queue  # installs its middleware once
    assert queue.middleware.count(metrics.count_enqueues) == 1
    assert vars(queue).keys().isdisjoint({"enqueue", "enqueue_many"})  # nothing patched
    tasks = Tasks()

    @tasks.task(max_attempts=2)
    async def work(ok: bool) -> None:
        if not ok:
            raise RuntimeError("no")

    await queue.enqueue("work", {"ok": True}, queue="q")
    await queue.enqueue_many([queuekit.new_job("work", {"ok": False}, queue="q", max_attempts=2)])
    await queue.enqueue("work", {"ok": True}, queue="q", delay=3600)
    await queuekit.Queue(queue.backend).enqueue("work", queue="other")  # another handle
    pool = Worker(
        queue,
        tasks,
        queues=["q"],
        before_job=[metrics.before_job],
        after_job=[metrics.after_job],
        **FAST,
    )
    await pool.run_until_empty()

    app = create_app(queue, api_key=KEY, metrics=metrics, dashboard=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as http:
        assert (await http.get("/metrics")).status_code == 401
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    labels = (("queue", "q"), ("type", "work"))
    assert got[("queuekit_jobs_enqueued_total", labels)] == 3
    assert ("queuekit_jobs_enqueued_total", (("queue", "other"), ("type", "work"))) not in got
    assert got[("queuekit_jobs_completed_total", labels)] == 1
    assert got[("queuekit_jobs_failed_total", labels)] == 1
    assert got[("queuekit_jobs_dead_total", labels)] == 1
    assert got[("queuekit_job_duration_seconds_count", labels)] == 3
    assert got[("queuekit_jobs_in_flight", (("queue", "q"),))] == 0
    assert got[("queuekit_queue_jobs", (("queue", "q"), ("state", "dead")))] == 1
    assert got[("queuekit_queue_jobs", (("queue", "q"), ("state", "scheduled")))] == 1
    assert got[("queuekit_queue_jobs", (("queue", "q"), ("state", "completed")))] == 1
    assert got[("queuekit_queue_oldest_ready_age_seconds", (("queue", "q"),))] == 0
    assert got[("queuekit_queue_paused", (("queue", "q"),))] == 0


async def test_serve_on_a_port(queue: Queue) -> None:
    metrics = Metrics()
    await queue.enqueue("t", queue="waiting")
    await metrics.refresh(queue)
    port = metrics.serve(0)
    text = await anyio.to_thread.run_sync(
        lambda: httpx.get(f"http://127.0.0.1:{port}/metrics").text
    )
    assert samples(text)[("queuekit_queue_jobs", (("queue", "waiting"), ("state", "ready")))] == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_cli_worker_metrics_port(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    port = free_port()
    async with queuekit.connect(url) as queue:
        job = await queue.enqueue("double", {"n": 2})
        worker = subprocess.Popen(
            [
                QUEUEKIT,
                "worker",
                "tests.cli.app:tasks",
                "--url",
                url,
                *FAST_WORKER,
                "--metrics-port",
                str(port),
            ],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert await queue.result(job.id, timeout=20) == 4
            key = ("queuekit_jobs_completed_total", (("queue", "default"), ("type", "double")))
            with anyio.fail_after(20):
                while True:
                    try:
                        text = await anyio.to_thread.run_sync(
                            lambda: httpx.get(f"http://127.0.0.1:{port}/metrics").text
                        )
                    except httpx.TransportError:
                        text = ""
                    got = samples(text) if text else {}
                    if (
                        got.get(key) == 1
                        and (
                            "queuekit_queue_jobs",
                            (("queue", "default"), ("state", "completed")),
                        )
                        in got
                    ):
                        break
                    await anyio.sleep(0.1)
        finally:
            worker.send_signal(signal.SIGTERM)
            _, log = await anyio.to_thread.run_sync(lambda: worker.communicate(timeout=30))
        assert worker.returncode == 0, log

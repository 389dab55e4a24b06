"""The examples run as written: the quickstart, and the web app plus worker service."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_processes_every_job(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "examples/quickstart.py", str(tmp_path / "jobs.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "enqueued 1000 jobs" in run.stdout
    assert "default  completed=500 dead=0 pending=0 failed=0" in run.stdout
    # An image job fails 5% of its attempts at random, so one in 8,000 ends dead after three:
    # every job must end, but not every one completed.
    images = re.search(r"images +completed=(\d+) dead=(\d+) pending=0 failed=0", run.stdout)
    assert images is not None, run.stdout
    assert int(images[1]) + int(images[2]) == 500


def test_limits_example_keeps_to_its_limits(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "examples/limits.py", str(tmp_path / "jobs.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "api completed=40 dead=0" in run.stdout
    peak = re.search(r"peak running at once: (\d+) \(limit 4\)", run.stdout)
    per_tenant = re.search(r"peak running per tenant: (\d+) \(limit 2\)", run.stdout)
    assert peak is not None and per_tenant is not None, run.stdout
    assert 1 <= int(peak[1]) <= 4 and 1 <= int(per_tenant[1]) <= 2
    assert "acme was held once and ran again: True" in run.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_web_app_enqueues_and_worker_service_runs(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "QUEUEKIT_URL": f"sqlite:///{tmp_path / 'service.db'}",
        "PYTHONPATH": str(ROOT),
    }
    port = free_port()
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "examples.service.app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    worker = subprocess.Popen([sys.executable, "-m", "examples.service.worker"], cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.post(
                    f"{base}/signup", json={"email": "ada@example.com", "name": "Ada"}
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the web app did not start"
                time.sleep(0.1)
        assert response.status_code == 202
        job_id = response.json()["job_id"]
        while (status := httpx.get(f"{base}/jobs/{job_id}").json())["status"] != "completed":
            assert time.monotonic() < deadline, f"the job did not complete: {status}"
            time.sleep(0.05)
        assert status["result"] == {"sent_to": "ada@example.com", "subject": "Welcome, Ada!"}
        assert httpx.get(f"{base}/jobs/nope").status_code == 404
    finally:
        for process in (web, worker):
            process.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    web.wait(timeout=30)

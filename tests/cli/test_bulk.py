"""Repairing by filter from the terminal: list, cancel and delete every job that matches."""

from __future__ import annotations

import os
import pty
import subprocess
from collections import Counter
from pathlib import Path

import anyio

import queuekit
from queuekit import JobStatus

from ..setups import BackendSetup
from .test_cli import QUEUEKIT, ROOT, fails, ok, ok_json


def test_cancel_and_delete_by_queue_type_and_status(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    for name, task_type, count in (("a", "x", 3), ("a", "y", 2), ("b", "x", 2)):
        for _ in range(count):
            ok("enqueue", task_type, "--queue", name, url=url)

    def statuses() -> dict[tuple[str, str, str], int]:
        jobs = ok_json("jobs", "list", "--limit", "100", url=url)["jobs"]
        return dict(Counter((job["queue"], job["type"], job["status"]) for job in jobs))

    typed = ok_json("jobs", "list", "--type", "x", url=url)["jobs"]
    assert {job["type"] for job in typed} == {"x"} and len(typed) == 5

    out = ok("jobs", "cancel", "--queue", "a", "--type", "x", "--yes", url=url)
    assert out == "cancelled 3 jobs of type x of queue a\n"
    assert statuses() == {
        ("a", "x", "cancelled"): 3,
        ("a", "y", "pending"): 2,
        ("b", "x", "pending"): 2,
    }

    # Without --yes it asks; "no" changes nothing and exits 1.
    assert "Aborted" in fails("jobs", "delete", "--type", "x", url=url, input="n\n")
    assert sum(statuses().values()) == 7
    assert "not both" in fails("jobs", "cancel", "some-id", "--queue", "a", url=url)
    assert "give job IDS" in fails("jobs", "delete", url=url)

    assert ok("jobs", "delete", "--status", "cancelled", "--yes", url=url) == (
        "deleted 3 cancelled jobs\n"
    )
    assert ok("jobs", "purge", "--queue", "b", "--status", "pending", "--yes", url=url) == (
        "deleted 2 pending jobs of queue b\n"
    )
    assert statuses() == {("a", "y", "pending"): 2}


async def test_a_terminal_sees_the_progress_on_stderr(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with queuekit.connect(url) as queue:
        await queue.enqueue_many(queuekit.new_job("t", queue="q") for _ in range(30))
    controller, terminal = pty.openpty()
    try:
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                [QUEUEKIT, "jobs", "cancel", "--queue", "q", "--yes", "--url", url],
                stdout=subprocess.PIPE,
                stderr=terminal,
                text=True,
                timeout=60,
                cwd=ROOT,
            )
        )
        os.close(terminal)
        terminal = -1
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal's other end is closed: everything was read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    assert done.returncode == 0 and done.stdout == "cancelled 30 jobs of queue q\n"
    assert b"cancelled 30 jobs\xe2\x80\xa6" in seen  # the count so far, erased at the end
    async with queuekit.connect(url) as queue:
        page = await queue.list_jobs(queue="q", status=JobStatus.CANCELLED, limit=100)
        assert len(page.jobs) == 30

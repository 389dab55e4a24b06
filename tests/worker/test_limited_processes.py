"""Limits across worker processes: SIGKILLs mid-job, and never more running than allowed."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

import queuekit
from queuekit import JobStatus, Limits

from ..setups import BackendSetup
from ..waiting import eventually
from .test_processes import start_worker

CONCURRENCY, PER_KEY = 4, 2


def intervals(record: Path, killed_at: dict[int, float]) -> list[tuple[float, float, str]]:
    """(start, end, key) of every attempt; one cut by a SIGKILL ends when its process died."""
    starts: dict[str, tuple[float, str, int]] = {}
    spans: list[tuple[float, float, str]] = []
    for line in record.read_text().splitlines():
        event, job_id, key, at, process = line.split()
        if event == "start":
            starts[job_id] = (float(at), key, int(process))
        else:
            begun, _, _ = starts.pop(job_id)
            spans.append((begun, float(at), key))
    for begun, cut_key, pid in starts.values():
        spans.append((begun, killed_at[pid], cut_key))
    return spans


@pytest.mark.slow
async def test_sigkilled_workers_never_break_the_limits(
    durable_setup: BackendSetup, tmp_path: Path
) -> None:
    assert durable_setup.url is not None
    record = tmp_path / "events.log"
    async with queuekit.connect(durable_setup.make()) as queue:
        await queue.set_limits("default", Limits(concurrency=CONCURRENCY, per_key=PER_KEY))
        jobs = await queue.enqueue_many(
            queuekit.new_job(
                "keyed", {"seconds": 0.02, "account": f"a{n % 5}"}, limit_key=f"a{n % 5}"
            )
            for n in range(150)
        )
        workers: list[subprocess.Popen[bytes]] = [
            start_worker(durable_setup.url, record, lease=1.0, concurrency=5) for _ in range(4)
        ]
        killed_at: dict[int, float] = {}
        try:
            for kill in range(2):

                def started(count: int = 30 * (kill + 1)) -> bool:
                    text = record.read_text() if record.exists() else ""
                    return text.count("start ") >= count

                await eventually(started, "the workers started jobs")
                victim = workers.pop(0)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                killed_at[victim.pid] = time.monotonic()
                workers.append(start_worker(durable_setup.url, record, lease=1.0, concurrency=5))

            async def all_done() -> bool:
                stats = await queue.stats("default")
                return stats.completed == len(jobs)

            await eventually(all_done, "every job completed", timeout=120)
        finally:
            for process in workers:
                process.send_signal(signal.SIGTERM)
            for process in workers:
                process.wait()
        statuses = [(await queue.get_job(job.id)).status for job in jobs]
        assert set(statuses) == {JobStatus.COMPLETED}

    spans = intervals(record, killed_at)
    assert len(spans) >= len(jobs)
    events = sorted(
        [(begun, 1, key) for begun, _, key in spans] + [(end, -1, key) for _, end, key in spans]
    )
    running: Counter[str] = Counter()
    for _, step, key in events:
        running[key] += step
        running["*"] += step
        assert running["*"] <= CONCURRENCY and running[key] <= PER_KEY, running

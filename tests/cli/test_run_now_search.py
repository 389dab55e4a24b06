"""`queuekit jobs run-now` by id and by filter, and `jobs list --error/--since/--until`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import queuekit
from queuekit import JobStatus

from ..setups import BackendSetup
from .test_cli import fails, ok, ok_json


async def test_run_now_and_search_from_the_terminal(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    async with queuekit.connect(url) as queue:
        delayed = [await queue.enqueue("t", queue="a", delay=3600) for _ in range(3)]
        other = await queue.enqueue("t", queue="b", delay=3600)
        broken = await queue.enqueue("t", queue="c")
        (running,) = await queue.backend.claim({"c": 1}, limit=1, lease=30, worker_id="w")
        assert await queue.backend.fail(running.attempt, "OSError: Disk FULL", retry_in=3600)

    out = ok("jobs", "run-now", delayed[0].id, broken.id, url=url)
    assert out == f"{delayed[0].id} pending: due now\n{broken.id} failed: due now\n"
    assert (
        ok("jobs", "run-now", delayed[0].id, url=url) == f"{delayed[0].id} pending: due already\n"
    )
    assert "no job with id 'nope'" in fails("jobs", "run-now", "nope", url=url)
    assert ok("jobs", "run-now", "--queue", "a", "--yes", url=url) == "made due 2 jobs of queue a\n"
    assert "Aborted" in fails("jobs", "run-now", "--status", "pending", url=url, input="n\n")
    assert "not both" in fails("jobs", "run-now", other.id, "--queue", "b", url=url)
    async with queuekit.connect(url) as queue:
        still = await queue.get_job(other.id)
        assert still.scheduled_at == other.scheduled_at
        claimed = await queue.backend.claim({"a": 5}, limit=5, lease=30, worker_id="w")
        assert {job.id for job in claimed} == {job.id for job in delayed}
        assert await queue.backend.complete(claimed[0].attempt) == JobStatus.COMPLETED
    left = ok("jobs", "run-now", claimed[0].id, url=url)
    assert left == f"{claimed[0].id} left as completed (only waiting jobs are run now)\n"

    found = ok_json("jobs", "list", "--error", "disk full", url=url)["jobs"]
    assert [job["id"] for job in found] == [broken.id]
    assert ok_json("jobs", "list", "--error", "nothing", url=url)["jobs"] == []
    since = other.created_at.isoformat()
    # Jobs enqueued within one tick of the backend's clock share a creation time: which side
    # of `since` each falls on follows from the times as stored.
    stored = [*delayed, other, broken]
    later = {job.id for job in stored if job.created_at >= other.created_at}
    assert {other.id, broken.id} <= later
    created = ok_json("jobs", "list", "--since", since, url=url)["jobs"]
    assert {job["id"] for job in created} == later
    before = ok_json("jobs", "list", "--until", since, url=url)["jobs"]
    assert {job["id"] for job in before} == {job.id for job in stored} - later
    recent = ok_json("jobs", "list", "--since", "1h", "--until", "0s", url=url)["jobs"]
    assert len(recent) == 5
    table = ok("jobs", "list", "--error", "full", "--since", "1d", url=url)
    assert broken.id in table and other.id not in table
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert ok_json("jobs", "list", "--since", tomorrow, url=url)["jobs"] == []
    assert "is not a time" in fails("jobs", "list", "--since", "soon", url=url)
    assert "1 to 200 characters" in fails("jobs", "list", "--error", "x" * 201, url=url)

"""`queuekit jobs show` prints a job's attempts: a table, and every record with --json."""

from __future__ import annotations

from pathlib import Path

from queuekit import JobStatus, Queue
from queuekit.backends.sqlite import SQLiteBackend

from ..conformance.helpers import claim_one
from .test_cli import ok, ok_json


async def test_show_prints_each_attempt(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with Queue(SQLiteBackend(str(path))) as queue:
        job = await queue.enqueue("t", max_attempts=2)
        failed = await claim_one(queue.backend)
        error = "ValueError: \x1b[31mred\x1b[0m\nTraceback (most recent call last): ..."
        await queue.backend.fail(failed.attempt, error, retry_in=0.0)
        again = await claim_one(queue.backend)
        assert await queue.backend.complete(again.attempt) == JobStatus.COMPLETED
    url = f"sqlite:///{path}"

    shown = ok("jobs", "show", job.id, url=url)
    table = shown.split("history\n", 1)[1].split("last error\n", 1)[0].splitlines()
    assert table[0].split() == ["attempt", "worker", "started", "took", "outcome", "error"]
    # Each error by its first line, without the terminal sequences it held.
    assert table[1].split()[-3:] == ["failed", "ValueError:", "red"]
    assert table[2].split()[0] == "2" and table[2].split()[-2:] == ["completed", "-"]
    assert len(table) == 3 and "\x1b" not in shown

    records = ok_json("jobs", "show", job.id, url=url)["history"]
    assert [(r["number"], r["outcome"], r["error"]) for r in records] == [
        (1, "failed", error),
        (2, "completed", None),
    ]

"""The dashboard's job page shows a table of the job's attempts, every text escaped."""

from __future__ import annotations

import re
from pathlib import Path

from queuekit import JobStatus, Queue
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend

from ..conformance.helpers import claim_one
from .test_security import KEY, client, log_in

HOSTILE = "<script>alert(1)</script>"


async def test_the_job_page_lists_each_attempt_escaped(tmp_path: Path) -> None:
    async with Queue(SQLiteBackend(str(tmp_path / "jobs.db"))) as queue:
        job = await queue.enqueue("t", max_attempts=2)
        failed = await queue.backend.claim({"default": 1}, limit=1, lease=30, worker_id=HOSTILE)
        error = f"ValueError: {HOSTILE}\nTraceback: {HOSTILE}"
        await queue.backend.fail(failed[0].attempt, error, retry_in=0.0)
        again = await claim_one(queue.backend)
        assert await queue.backend.complete(again.attempt) == JobStatus.COMPLETED
        async with client(create_app(queue, api_key=KEY)) as http:
            await log_in(http)
            page = await http.get(f"/dashboard/jobs/{job.id}")
            fragment = await http.get(f"/dashboard/fragments/jobs/{job.id}")
    assert page.status_code == 200 and fragment.status_code == 200
    for html in (page.text, fragment.text):
        assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        rows = re.findall(r'<tr data-attempt="(\d+)">(.*?)</tr>', html, re.DOTALL)
        assert [number for number, _ in rows] == ["1", "2"]
        (_, first), (_, second) = rows
        assert 'class="status failed">failed<' in first
        # The error's first line is the summary; the whole error opens below it.
        assert "<summary>ValueError: &lt;script&gt;alert(1)&lt;/script&gt;</summary>" in first
        assert "Traceback: &lt;script&gt;" in first
        assert 'class="status completed">completed<' in second and "<details>" not in second

"""The dashboard's job page shows a running job's progress and partial output, escaped."""

from __future__ import annotations

from pathlib import Path

from queuekit import Queue
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.progress import ProgressUpdate

from ..conformance.helpers import claim_one
from .test_security import KEY, client, log_in

HOSTILE = "<script>alert(1)</script>"


async def test_the_job_page_shows_progress_and_output(tmp_path: Path) -> None:
    async with Queue(SQLiteBackend(str(tmp_path / "jobs.db"))) as queue:
        job = await queue.enqueue("t")
        running = await claim_one(queue.backend)
        update = ProgressUpdate(0.25, HOSTILE, '{"seen": "' + HOSTILE + '"}')
        await queue.backend.heartbeat(
            [running.attempt], lease=30, progress={running.attempt: update}
        )
        async with client(create_app(queue, api_key=KEY)) as http:
            await log_in(http)
            page = await http.get(f"/dashboard/jobs/{job.id}")
            fragment = await http.get(f"/dashboard/fragments/jobs/{job.id}")
    assert page.status_code == 200 and fragment.status_code == 200
    for html in (page.text, fragment.text):
        assert "<script>alert" not in html
        assert '<progress max="1" value="0.25"></progress> 25.0%' in html
        assert "· &lt;script&gt;alert(1)&lt;/script&gt;</p>" in html
        assert "<pre data-output>{\n  &#34;seen&#34;: &#34;&lt;script&gt;" in html

"""The API shows a running job's progress and partial output, as its OpenAPI document says."""

from __future__ import annotations

import httpx

from queuekit import Queue
from queuekit.progress import ProgressUpdate
from queuekit.web.api import openapi_document
from queuekit.web.models import Job

from ..conformance.helpers import claim_one


async def test_a_job_shows_its_progress_and_output(api: httpx.AsyncClient, queue: Queue) -> None:
    created = (await api.post("/v1/jobs", json={"type": "t"})).json()
    assert (created["progress"], created["progress_note"], created["output"]) == (None, None, None)
    running = await claim_one(queue.backend)
    update = ProgressUpdate(0.1 + 0.2, "rows 3 of 10", '{"rows":[1,2,3]}')
    await queue.backend.heartbeat([running.attempt], lease=30, progress={running.attempt: update})
    shown = (await api.get(f"/v1/jobs/{created['id']}")).json()
    Job.model_validate(shown)
    assert shown["progress"] == 0.1 + 0.2 and shown["progress_note"] == "rows 3 of 10"
    assert shown["output"] == {"rows": [1, 2, 3]}


def test_the_document_describes_progress() -> None:
    job = openapi_document()["components"]["schemas"]["Job"]["properties"]
    assert {"progress", "progress_note", "output"} <= set(job)

"""The API shows a job's attempt history, as its OpenAPI document describes it."""

from __future__ import annotations

import httpx

from queuekit import JobStatus, Queue
from queuekit.web.api import openapi_document
from queuekit.web.models import Job, JobPage

from ..conformance.helpers import WORKER, claim_one


async def test_one_job_shows_its_attempts_and_a_list_does_not(
    api: httpx.AsyncClient, queue: Queue
) -> None:
    created = (await api.post("/v1/jobs", json={"type": "t", "max_attempts": 2})).json()
    failed = await claim_one(queue.backend)
    await queue.backend.fail(failed.attempt, "ValueError: bad\nTraceback...", retry_in=0.0)
    again = await claim_one(queue.backend)
    assert await queue.backend.complete(again.attempt, '"ok"') == JobStatus.COMPLETED

    shown = (await api.get(f"/v1/jobs/{created['id']}")).json()
    Job.model_validate(shown)
    assert [
        (record["number"], record["worker_id"], record["outcome"], record["error"])
        for record in shown["history"]
    ] == [(1, WORKER, "failed", "ValueError: bad\nTraceback..."), (2, WORKER, "completed", None)]
    first = shown["history"][0]
    assert failed.started_at is not None
    assert first["started_at"] == failed.started_at.isoformat()
    assert first["started_at"] <= first["finished_at"] <= shown["history"][1]["started_at"]
    assert shown["history"][1]["finished_at"] == shown["finished_at"]

    listed = (await api.get("/v1/jobs")).json()
    JobPage.model_validate(listed)
    assert [job["history"] for job in listed["jobs"]] == [None]


async def test_a_cancel_answers_with_the_ended_attempt(
    api: httpx.AsyncClient, queue: Queue
) -> None:
    job = await queue.enqueue("t")
    await claim_one(queue.backend)
    cancelled = (await api.post(f"/v1/jobs/{job.id}/cancel")).json()
    assert [record["outcome"] for record in cancelled["history"]] == ["cancelled"]


def test_the_document_describes_the_records() -> None:
    schemas = openapi_document()["components"]["schemas"]
    record = schemas["AttemptRecord"]
    assert set(record["required"]) == {
        "number",
        "worker_id",
        "started_at",
        "finished_at",
        "outcome",
        "error",
    }
    assert set(schemas["AttemptOutcome"]["enum"]) == {
        "completed",
        "failed",
        "dead",
        "snoozed",
        "cancelled",
    }
    history = schemas["Job"]["properties"]["history"]["anyOf"]
    assert {"items": {"$ref": "#/components/schemas/AttemptRecord"}, "type": "array"} in history

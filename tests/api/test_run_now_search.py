"""The API's run-now routes and its search of jobs by error text and creation time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from queuekit import JobStatus, Queue
from queuekit.search import MAX_ERROR_SEARCH

from ..conformance.helpers import claim_one
from .conftest import client_for


async def test_run_now_of_one_job(api: httpx.AsyncClient, queue: Queue) -> None:
    delayed = await queue.enqueue("t", delay=3600)
    made_due = await api.post(f"/v1/jobs/{delayed.id}/run-now")
    assert made_due.status_code == 200
    body = made_due.json()
    assert body["id"] == delayed.id and body["status"] == "pending"
    assert datetime.fromisoformat(body["scheduled_at"]) < delayed.scheduled_at
    running = await claim_one(queue.backend)
    conflict = await api.post(f"/v1/jobs/{running.id}/run-now")
    assert conflict.status_code == 409 and "running" in conflict.json()["error"]
    assert (await api.post("/v1/jobs/no-such-job/run-now")).status_code == 404
    assert (await api.post("/v1/jobs/bad%20id/run-now")).status_code == 404
    assert (await api.get(f"/v1/jobs/{delayed.id}/run-now")).status_code == 405


async def test_run_now_by_filter(api: httpx.AsyncClient, queue: Queue) -> None:
    for name in ("a", "a", "b"):
        await queue.enqueue("t", queue=name, delay=3600)
    await queue.enqueue("u", queue="a", delay=3600)
    assert (await api.post("/v1/jobs/run-now", json={"queue": "a", "type": "t"})).json() == {
        "count": 2
    }
    assert (await api.post("/v1/jobs/run-now", json={"status": "pending"})).json() == {"count": 2}
    assert (await api.post("/v1/jobs/run-now", json={})).json() == {"count": 0}
    refused = await api.post("/v1/jobs/run-now", json={"status": "dead"})
    assert refused.status_code == 422
    assert (await api.post("/v1/jobs/run-now", json={"queue": "bad name"})).status_code == 422
    assert (await api.post("/v1/jobs/run-now", json={"other": 1})).status_code == 422


async def test_search_by_error_text_and_time(api: httpx.AsyncClient, queue: Queue) -> None:
    failing = await queue.enqueue("t", max_attempts=1)
    running = await claim_one(queue.backend)
    assert await queue.backend.fail(running.attempt, "Disk FULL", retry_in=None)
    other = await queue.enqueue("t")

    async def ids(**params: str) -> list[str]:
        response = await api.get("/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["jobs"]]

    assert await ids(error="disk full") == [failing.id]
    assert await ids(error="disk full", status=JobStatus.DEAD.value) == [failing.id]
    assert await ids(error="disk full", status="pending") == []
    since = other.created_at.isoformat()
    assert other.id in await ids(created_after=since)
    assert other.id not in await ids(created_before=since)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert set(await ids(created_before=later)) == {failing.id, other.id}
    for bad in (
        {"error": ""},
        {"error": "x" * (MAX_ERROR_SEARCH + 1)},
        {"created_after": "2026-01-01T00:00:00"},  # no time zone
        {"created_before": "yesterday"},
    ):
        response = await api.get("/v1/jobs", params=bad)
        assert response.status_code == 422, bad
        assert "error" in response.json()


async def test_run_now_needs_the_api_key(queue: Queue) -> None:
    job = await queue.enqueue("t", delay=3600)
    async with client_for(queue, api_key="s3cret-key-for-tests") as client:
        assert (await client.post(f"/v1/jobs/{job.id}/run-now")).status_code == 401
        assert (await client.post("/v1/jobs/run-now", json={})).status_code == 401
    assert (await queue.get_job(job.id)).scheduled_at == job.scheduled_at


async def test_the_document_shows_the_new_routes(api: httpx.AsyncClient) -> None:
    document = (await api.get("/v1/openapi.json")).json()
    assert "post" in document["paths"]["/v1/jobs/run-now"]
    assert "post" in document["paths"]["/v1/jobs/{job_id}/run-now"]
    names = {p["name"] for p in document["paths"]["/v1/jobs"]["get"]["parameters"]}
    assert {"error", "created_after", "created_before"} <= names

"""The HTTP API through httpx's ASGI transport, against real backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from queuekit import JobStatus, Queue
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend

from ..conformance.helpers import claim_one

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def client_for(queue: Queue, **options: Any) -> httpx.AsyncClient:
    app = create_app(queue, **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture
async def api(queue: Queue) -> AsyncIterator[httpx.AsyncClient]:
    """The API on each of the four backends."""
    async with client_for(queue, api_key=KEY) as client:
        client.headers.update(AUTH)
        yield client


@pytest.fixture
async def sqlite_queue(tmp_path: Path) -> AsyncIterator[Queue]:
    async with Queue(SQLiteBackend(str(tmp_path / "jobs.db"))) as queue:
        yield queue


@pytest.fixture
async def sqlite_api(sqlite_queue: Queue) -> AsyncIterator[httpx.AsyncClient]:
    """The API on SQLite, for the tests of the HTTP layer itself."""
    async with client_for(sqlite_queue, api_key=KEY) as client:
        client.headers.update(AUTH)
        yield client


async def test_enqueue_inspect_and_repair(api: httpx.AsyncClient, queue: Queue) -> None:
    created = await api.post(
        "/v1/jobs",
        json={"type": "send", "payload": {"to": "a"}, "queue": "emails", "max_attempts": 1},
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "pending" and job["payload"] == {"to": "a"}

    bulk = await api.post("/v1/jobs/bulk", json={"jobs": [{"type": "t"}, {"type": "t"}]})
    assert bulk.status_code == 201 and len(bulk.json()["jobs"]) == 2

    listed = (await api.get("/v1/jobs", params={"queue": "emails", "status": "pending"})).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and listed["next_cursor"] is None
    page = (await api.get("/v1/jobs", params={"limit": 2})).json()
    assert len(page["jobs"]) == 2 and page["next_cursor"]
    rest = (await api.get("/v1/jobs", params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert [j["id"] for j in rest["jobs"]] == [job["id"]]

    # A running job cannot be replayed or deleted; once dead, replay keeps its id.
    running = await claim_one(queue.backend, queue="emails")
    assert (await api.post(f"/v1/jobs/{job['id']}/replay")).status_code == 409
    assert (await api.delete(f"/v1/jobs/{job['id']}")).status_code == 409
    await queue.backend.fail(running.attempt, "boom\nTraceback...", retry_in=None)
    shown = (await api.get(f"/v1/jobs/{job['id']}")).json()
    assert shown["status"] == "dead" and shown["last_error"].startswith("boom")
    replayed = await api.post(f"/v1/jobs/{job['id']}/replay")
    assert replayed.status_code == 200
    assert replayed.json()["id"] == job["id"] and replayed.json()["attempts"] == 0

    cancelled = await api.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert (await api.delete(f"/v1/jobs/{job['id']}")).status_code == 204
    assert (await api.get(f"/v1/jobs/{job['id']}")).status_code == 404


async def test_jobs_carry_their_headers(api: httpx.AsyncClient, queue: Queue) -> None:
    tagged = await queue.enqueue("t", headers={"tenant": "acme"})
    created = (await api.post("/v1/jobs", json={"type": "t"})).json()
    assert created["headers"] == {}
    shown = (await api.get(f"/v1/jobs/{tagged.id}")).json()
    assert shown["headers"] == {"tenant": "acme"}
    listed = (await api.get("/v1/jobs")).json()["jobs"]
    assert [job["headers"] for job in listed] == [{}, {"tenant": "acme"}]


async def test_pause_resume_and_queue_stats(
    sqlite_api: httpx.AsyncClient, sqlite_queue: Queue
) -> None:
    api, queue = sqlite_api, sqlite_queue
    await queue.enqueue("t", queue="a")
    paused = await api.post("/v1/queues/b/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    queues = (await api.get("/v1/queues")).json()["queues"]
    assert [(q["queue"], q["paused"], q["pending"]) for q in queues] == [
        ("a", False, 1),
        ("b", True, 0),
    ]
    assert (await api.post("/v1/queues/b/resume")).json()["paused"] is False
    assert await queue.paused_queues() == set()
    assert (await api.get("/v1/queues/a")).json()["ready"] == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/jobs", b"{not json", 400),
        ("POST", "/v1/jobs", b"[1]", 422),
        ("POST", "/v1/jobs", b'{"type": "bad name"}', 422),
        ("POST", "/v1/jobs", b'{"type": "t", "priority": "high"}', 422),
        ("POST", "/v1/jobs", b'{"type": "t", "priority": true}', 422),
        ("POST", "/v1/jobs", b'{"type": "t", "delay": -1}', 422),
        ("POST", "/v1/jobs", b'{"type": "t", "surprise": 1}', 422),
        ("POST", "/v1/jobs/bulk", b'{"jobs": []}', 422),
        ("GET", "/v1/jobs?limit=1001", b"", 422),
        ("GET", "/v1/jobs?limit=0", b"", 422),
        ("GET", "/v1/jobs?status=weird", b"", 422),
        ("GET", "/v1/jobs?cursor=abc", b"", 422),
        ("GET", "/v1/jobs/no-such-job", b"", 404),
        ("GET", "/v1/jobs/%00%01", b"", 404),
        ("POST", "/v1/jobs/nope/replay", b"", 404),
        ("POST", "/v1/queues/bad%20name/pause", b"", 422),
        ("GET", "/v1/nowhere", b"", 404),
        ("PUT", "/v1/jobs", b"", 405),
    ],
)
async def test_bad_requests_get_a_json_4xx(
    sqlite_api: httpx.AsyncClient, method: str, path: str, body: bytes, status: int
) -> None:
    response = await sqlite_api.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert isinstance(response.json()["error"], str)


async def test_bodies_over_the_limit_are_refused(sqlite_queue: Queue) -> None:
    async with client_for(sqlite_queue, max_body_bytes=1000) as client:
        response = await client.post("/v1/jobs", json={"type": "t", "payload": "x" * 2000})
        assert response.status_code == 413 and "error" in response.json()

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(20):
                yield b" " * 100

        streamed = await client.post("/v1/jobs", content=chunks())
        assert streamed.status_code == 413


async def test_api_key_is_required_and_checked(sqlite_queue: Queue) -> None:
    queue = sqlite_queue
    async with client_for(queue, api_key=KEY) as client:
        assert (await client.get("/v1/queues")).status_code == 401
        wrong = await client.get("/v1/queues", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await client.get("/v1/queues", headers=AUTH)).status_code == 200
        assert (await client.get("/v1/openapi.json")).json()["openapi"].startswith("3.1")
    with pytest.raises(ValueError, match="empty"):
        create_app(queue, api_key="")
    async with client_for(queue) as open_client:  # no key configured: open (loopback use)
        assert (await open_client.get("/v1/queues")).status_code == 200


async def test_backend_down_is_a_503(tmp_path: Path) -> None:
    queue = Queue(SQLiteBackend(str(tmp_path / "jobs.db")))  # never opened: unavailable
    async with client_for(queue) as client:
        response = await client.get("/v1/queues")
    assert response.status_code == 503 and "unavailable" in response.json()["error"]


async def test_every_route_on_every_backend(api: httpx.AsyncClient, queue: Queue) -> None:
    job = (await api.post("/v1/jobs", json={"type": "t", "queue": "q"})).json()
    assert (await api.post("/v1/queues/q/pause")).json()["paused"]
    assert (await api.get("/v1/jobs", params={"queue": "q"})).json()["jobs"][0]["id"] == job["id"]
    assert (await api.post(f"/v1/jobs/{job['id']}/cancel")).json()["status"] == "cancelled"
    assert (await api.post(f"/v1/jobs/{job['id']}/replay")).json()["status"] == "pending"
    assert (await queue.get_job(job["id"])).status == JobStatus.PENDING
    assert not (await api.post("/v1/queues/q/resume")).json()["paused"]
    assert (await api.delete(f"/v1/jobs/{job['id']}")).status_code == 204

"""The HTTP API through httpx's ASGI transport, against real backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from queuekit import JobStatus, Queue
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.errors import InvalidOptionError

from ..conformance.helpers import claim_one
from .conftest import AUTH, KEY, client_for


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

        streamed = await client.post(
            "/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413


async def test_api_key_is_required_and_checked(sqlite_queue: Queue) -> None:
    queue = sqlite_queue
    async with client_for(queue, api_key=KEY) as client:
        assert (await client.get("/v1/queues")).status_code == 401
        wrong = await client.get("/v1/queues", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await client.get("/v1/queues", headers=AUTH)).status_code == 200
        # The scheme is case-insensitive (RFC 9110); the key is not.
        for scheme in ("bearer", "BEARER"):
            given = {"Authorization": f"{scheme} {KEY}"}
            assert (await client.get("/v1/queues", headers=given)).status_code == 200
        upper = {"Authorization": f"Bearer {KEY.upper()}"}
        assert (await client.get("/v1/queues", headers=upper)).status_code == 401
        assert (await client.get("/v1/openapi.json")).status_code == 401
        document = await client.get("/v1/openapi.json", headers=AUTH)
        assert document.json()["openapi"].startswith("3.1")
    with pytest.raises(ValueError, match="empty"):
        create_app(queue, api_key="")
    with pytest.raises(InvalidOptionError, match="at least 16"):
        create_app(queue, api_key="short")
    with pytest.raises(InvalidOptionError, match="at least 16"):
        create_app(queue, api_key=KEY, secret=b"short")
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


async def test_enqueue_takes_every_library_option(api: httpx.AsyncClient, queue: Queue) -> None:
    run_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    created = await api.post(
        "/v1/jobs",
        json={
            "type": "t",
            "id": "order-42",
            "run_at": run_at.isoformat(),
            "headers": {"tenant": "acme"},
            "priority": 20.0,  # an integral number is an integer, as JSON Schema says
        },
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["id"] == "order-42" and job["headers"] == {"tenant": "acme"}
    assert job["priority"] == 20
    assert datetime.fromisoformat(job["scheduled_at"]) == run_at
    stored = await queue.get_job("order-42")
    assert stored.headers == {"tenant": "acme"} and stored.scheduled_at == run_at
    assert (await api.get("/v1/jobs/order-42")).json()["id"] == "order-42"
    taken = await api.post("/v1/jobs", json={"type": "t", "id": "order-42"})
    assert taken.status_code == 409 and "order-42" in taken.json()["error"]
    taken_in_bulk = await api.post(
        "/v1/jobs/bulk", json={"jobs": [{"type": "t", "id": "order-42"}]}
    )
    assert taken_in_bulk.status_code == 409
    twice = await api.post("/v1/jobs/bulk", json={"jobs": [{"type": "t", "id": "a"}] * 2})
    assert twice.status_code == 409 and "same id" in twice.json()["error"]

    bulk = await api.post(
        "/v1/jobs/bulk", json={"jobs": [{"type": "t", "headers": {"a": "b"}, "delay": 60}]}
    )
    assert bulk.status_code == 201 and bulk.json()["jobs"][0]["headers"] == {"a": "b"}


@pytest.mark.parametrize(
    "job",
    [
        {"type": "t", "run_at": "2030-01-01T00:00:00"},  # no time zone
        {"type": "t", "run_at": 1893456000},  # a number, not a date-time
        {"type": "t", "run_at": "2030-01-01T00:00:00Z", "delay": 5},
        {"type": "t", "run_at": "3030-01-01T00:00:00Z"},  # beyond a century
        {"type": "t", "headers": {"": "x"}},
        {"type": "t", "headers": {"a": 1}},
        {"type": "t", "id": "order 42"},
        {"type": "t", "priority": 20.5},
        {"type": "t", "max_attempts": "3"},
    ],
)
async def test_bad_options_are_422(sqlite_api: httpx.AsyncClient, job: dict[str, Any]) -> None:
    response = await sqlite_api.post("/v1/jobs", json=job)
    assert response.status_code == 422, response.text
    assert (await sqlite_api.get("/v1/jobs")).json()["jobs"] == []


async def test_filters_and_actions_on_many_jobs(api: httpx.AsyncClient, queue: Queue) -> None:
    for type_, name in (("x", "q1"), ("x", "q1"), ("y", "q1"), ("x", "q2")):
        await queue.enqueue(type_, queue=name)
    listed = (await api.get("/v1/jobs", params={"type": "x"})).json()["jobs"]
    assert [(job["type"], job["queue"]) for job in listed] == [
        ("x", "q2"),
        ("x", "q1"),
        ("x", "q1"),
    ]
    mine = (await api.get("/v1/jobs", params={"type": "x", "queue": "q1"})).json()["jobs"]
    assert len(mine) == 2

    cancelled = await api.post("/v1/jobs/cancel", json={"queue": "q1", "type": "x"})
    assert cancelled.status_code == 200 and cancelled.json() == {"count": 2}
    gone = (await api.get("/v1/jobs", params={"status": "cancelled"})).json()["jobs"]
    assert {job["id"] for job in gone} == {job["id"] for job in mine}

    replayed = await api.post("/v1/jobs/replay", json={"queue": "q1"})
    assert replayed.json() == {"count": 2}
    assert (await api.get("/v1/jobs", params={"status": "cancelled"})).json()["jobs"] == []

    deleted = await api.post("/v1/jobs/delete", json={"type": "y"})
    assert deleted.json() == {"count": 1}
    assert (await api.get("/v1/jobs", params={"type": "y"})).json()["jobs"] == []
    assert (await api.post("/v1/jobs/delete", json={"type": "no such"})).status_code == 422


async def test_replaying_a_pending_job_is_a_conflict(sqlite_api: httpx.AsyncClient) -> None:
    job = (await sqlite_api.post("/v1/jobs", json={"type": "t"})).json()
    response = await sqlite_api.post(f"/v1/jobs/{job['id']}/replay")
    assert response.status_code == 409 and "pending" in response.json()["error"]


async def test_deeply_nested_json_is_a_400_not_a_500(sqlite_api: httpx.AsyncClient) -> None:
    depth = 50_000
    body = b'{"type": "t", "payload": ' + b"[" * depth + b"]" * depth + b"}"
    response = await sqlite_api.post(
        "/v1/jobs", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]

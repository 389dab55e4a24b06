"""The limits routes: set, read, clear and hold, behind the same guards as every other write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from queuekit import Limits, Queue
from queuekit.api import create_app
from queuekit.backends.memory import MemoryBackend
from queuekit.web.api import openapi_document

from ..conformance.helpers import claim_one
from .conftest import AUTH, KEY, client_for

WEEK = 7 * 24 * 3600.0
"""A rate window no test run straddles (windows start at multiples of it)."""
LIMITS: dict[str, Any] = {
    "concurrency": 20,
    "per_key": 2,
    "rate": 1000,
    "key_rate": 100,
    "period": WEEK,
}


@pytest.fixture
async def memory_queue() -> AsyncIterator[Queue]:
    async with Queue(MemoryBackend()) as queue:
        yield queue


@pytest.fixture
async def memory_api(memory_queue: Queue) -> AsyncIterator[httpx.AsyncClient]:
    """The API on memory, for the tests of the HTTP layer itself."""
    async with client_for(memory_queue, api_key=KEY) as client:
        client.headers.update(AUTH)
        yield client


async def test_set_read_hold_and_clear_limits(api: httpx.AsyncClient, queue: Queue) -> None:
    put = await api.put("/v1/queues/payments/limits", json=LIMITS)
    assert put.status_code == 200, put.text
    shown = put.json()
    assert shown["queue"] == "payments" and shown["limits"] == {**LIMITS, "ordered": False}
    assert shown["running"] == 0 and shown["held_until"] is None and shown["held_keys"] == {}
    assert await queue.limits() == {"payments": Limits(**LIMITS)}
    every = (await api.get("/v1/limits")).json()
    assert every == {"limits": {"payments": {**LIMITS, "ordered": False}}}

    created = await api.post(
        "/v1/jobs", json={"type": "charge", "queue": "payments", "limit_key": "acct_1"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["limit_key"] == "acct_1"
    assert (await queue.get_job(created.json()["id"])).limit_key == "acct_1"
    running = await claim_one(queue.backend, queue="payments")
    assert running.id == created.json()["id"] and running.started_at is not None
    usage = (await api.get("/v1/queues/payments/limits")).json()
    assert usage["running"] == 1 and usage["running_by_key"] == {"acct_1": 1}
    assert usage["started_in_window"] == 1
    assert datetime.fromisoformat(usage["window_ends_at"]) > running.started_at
    assert (await api.get(f"/v1/jobs/{running.id}")).json()["limit_key"] == "acct_1"

    held = await api.post("/v1/queues/payments/hold", json={"seconds": 60, "key": "acct_1"})
    assert held.status_code == 200, held.text
    assert list(held.json()["held_keys"]) == ["acct_1"] and held.json()["held_until"] is None
    whole = (await api.post("/v1/queues/payments/hold", json={"seconds": 30})).json()
    until = datetime.fromisoformat(whole["held_until"])
    assert until > running.started_at
    # A shorter hold leaves the longer one in place.
    again = (await api.post("/v1/queues/payments/hold", json={"seconds": 1})).json()
    assert datetime.fromisoformat(again["held_until"]) == until

    cleared = await api.delete("/v1/queues/payments/limits")
    assert cleared.status_code == 200 and cleared.json()["limits"] is None
    assert "payments" not in await queue.limits()
    assert (await api.get("/v1/queues/payments/limits")).json()["limits"] is None


async def test_ordered_and_integral_numbers(memory_api: httpx.AsyncClient) -> None:
    # An integral float is an integer, as JSON Schema counts it (and as enqueue takes it).
    put = await memory_api.put("/v1/queues/q/limits", json={"per_key": 1.0, "ordered": True})
    assert put.status_code == 200, put.text
    assert put.json()["limits"] == {
        "concurrency": None,
        "per_key": 1,
        "rate": None,
        "key_rate": None,
        "period": 60.0,
        "ordered": True,
    }
    # A PUT replaces the limits as a whole: per_key is gone.
    put = await memory_api.put("/v1/queues/q/limits", json={"ordered": True})
    assert put.json()["limits"]["per_key"] is None


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "/v1/queues/q/limits", b"{}", 422),  # no limit at all: DELETE removes them
        ("PUT", "/v1/queues/q/limits", b'{"ordered": false}', 422),
        ("PUT", "/v1/queues/q/limits", b'{"period": 5}', 422),
        ("PUT", "/v1/queues/q/limits", b'{"concurrency": 0}', 422),
        ("PUT", "/v1/queues/q/limits", b'{"concurrency": 1000001}', 422),
        ("PUT", "/v1/queues/q/limits", b'{"concurrency": true}', 422),
        ("PUT", "/v1/queues/q/limits", b'{"concurrency": "5"}', 422),
        ("PUT", "/v1/queues/q/limits", b'{"per_key": 2.5}', 422),
        ("PUT", "/v1/queues/q/limits", b'{"rate": 1, "period": 0}', 422),
        ("PUT", "/v1/queues/q/limits", b'{"rate": 1, "period": 1e9}', 422),
        ("PUT", "/v1/queues/q/limits", b'{"ordered": "yes"}', 422),
        ("PUT", "/v1/queues/q/limits", b'{"rate": 1, "surprise": 1}', 422),
        ("PUT", "/v1/queues/q/limits", b"[1]", 422),
        ("PUT", "/v1/queues/q/limits", b"{nope", 400),
        ("PUT", "/v1/queues/bad%20name/limits", b'{"rate": 1}', 422),
        ("GET", "/v1/queues/bad%20name/limits", b"", 422),
        ("DELETE", "/v1/queues/bad%20name/limits", b"", 422),
        ("POST", "/v1/queues/q/limits", b'{"rate": 1}', 405),
        ("POST", "/v1/queues/q/hold", b"{}", 422),
        ("POST", "/v1/queues/q/hold", b'{"seconds": -1}', 422),
        ("POST", "/v1/queues/q/hold", b'{"seconds": "1"}', 422),
        ("POST", "/v1/queues/q/hold", b'{"seconds": 1, "key": ""}', 422),
        ("POST", "/v1/queues/q/hold", b'{"seconds": 1, "key": "a\\u0000b"}', 422),
        ("POST", "/v1/queues/q/hold", b'{"seconds": 1, "key": "\\ud800"}', 422),
        ("POST", "/v1/queues/q/hold", b'{"seconds": 1, "until": 5}', 422),
        ("POST", "/v1/jobs", b'{"type": "t", "limit_key": ""}', 422),
        ("POST", "/v1/jobs", b'{"type": "t", "limit_key": 5}', 422),
    ],
)
async def test_bad_requests_are_refused_and_store_nothing(
    memory_api: httpx.AsyncClient,
    memory_queue: Queue,
    method: str,
    path: str,
    body: bytes,
    status: int,
) -> None:
    response = await memory_api.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert isinstance(response.json()["error"], str)
    assert await memory_queue.limits() == {}
    assert (await memory_queue.limit_usage("q")).held_keys == {}
    assert (await memory_queue.list_jobs()).jobs == []


async def test_a_body_must_be_declared_json(memory_api: httpx.AsyncClient) -> None:
    for path in ("/v1/queues/q/limits", "/v1/queues/q/hold"):
        method = "PUT" if path.endswith("limits") else "POST"
        sent = await memory_api.request(
            method,
            path,
            content=b'{"rate": 1, "seconds": 1}',
            headers={"Content-Type": "text/plain"},
        )
        assert sent.status_code == 415, path


async def test_the_routes_need_the_key(memory_queue: Queue) -> None:
    await memory_queue.set_limits("q", Limits(concurrency=1))
    async with client_for(memory_queue, api_key=KEY) as http:
        wrong = {"Authorization": "Bearer nope-nope-nope-nope"}
        calls = [
            ("GET", "/v1/limits", None),
            ("GET", "/v1/queues/q/limits", None),
            ("PUT", "/v1/queues/q/limits", {"concurrency": 5}),
            ("DELETE", "/v1/queues/q/limits", None),
            ("POST", "/v1/queues/q/hold", {"seconds": 60}),
        ]
        for method, path, body in calls:
            refused = await http.request(method, path, json=body)
            assert refused.status_code == 401, (method, path, refused.text)
        # One wrong key (more would be slowed down, as for every route).
        refused = await http.put("/v1/queues/q/limits", json={"concurrency": 5}, headers=wrong)
        assert refused.status_code == 401
        assert await memory_queue.limits() == {"q": Limits(concurrency=1)}
        assert (await memory_queue.limit_usage("q")).held_until is None
        for method, path, body in calls:
            done = await http.request(method, path, json=body, headers=AUTH)
            assert done.status_code == 200, (method, path, done.text)


async def test_a_cross_site_write_changes_nothing(memory_queue: Queue) -> None:
    await memory_queue.set_limits("q", Limits(concurrency=1))
    transport = httpx.ASGITransport(app=create_app(memory_queue))  # keyless, as on loopback
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        for origin in ("http://evil.example", "null"):
            evil = {"Content-Type": "application/json", "Origin": origin}
            body = b'{"concurrency": 1000}'
            put = await http.put("/v1/queues/q/limits", content=body, headers=evil)
            assert put.status_code == 403 and "cross-origin" in put.json()["error"]
            deleted = await http.delete("/v1/queues/q/limits", headers=evil)
            assert deleted.status_code == 403
            held = await http.post("/v1/queues/q/hold", content=b'{"seconds": 60}', headers=evil)
            assert held.status_code == 403
            # A no-cors "simple" request sends text/plain: refused by its Origin all the same.
            simple = {**evil, "Content-Type": "text/plain;charset=UTF-8"}
            assert (
                await http.put("/v1/queues/q/limits", content=body, headers=simple)
            ).status_code == 403
        assert await memory_queue.limits() == {"q": Limits(concurrency=1)}
        assert (await memory_queue.limit_usage("q")).held_until is None
        # Reading is not a write: a cross-site GET is answered (the browser hides the answer).
        assert (await http.get("/v1/limits")).status_code == 200
        # The same write from the app's own origin works.
        same = {"Content-Type": "application/json", "Origin": "http://127.0.0.1:8000"}
        done = await http.put("/v1/queues/q/limits", content=b'{"concurrency": 3}', headers=same)
        assert done.status_code == 200
    assert await memory_queue.limits() == {"q": Limits(concurrency=3)}


def test_the_document_describes_the_routes() -> None:
    document = openapi_document()
    paths = document["paths"]
    assert set(paths["/v1/queues/{name}/limits"]) == {"get", "put", "delete"}
    assert "get" in paths["/v1/limits"] and "post" in paths["/v1/queues/{name}/hold"]
    put = paths["/v1/queues/{name}/limits"]["put"]
    body = put["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/NewLimits")
    schemas = document["components"]["schemas"]
    new_limits = schemas["NewLimits"]
    assert new_limits["additionalProperties"] is False and "anyOf" in new_limits
    assert set(new_limits["properties"]) == set(LIMITS) | {"ordered"}
    assert new_limits["properties"]["period"]["maximum"] == 366 * 24 * 3600
    assert "401" in put["responses"] and "403" in put["responses"] and "415" in put["responses"]
    assert set(schemas["Hold"]["required"]) == {"seconds"}
    assert "limit_key" in schemas["Job"]["properties"]
    assert "limit_key" in schemas["NewJob"]["properties"]

"""The HTTP API's enqueue takes an expiry, shows it, and refuses bad ones storing nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from queuekit import JobStatus, Queue


async def test_enqueue_with_an_expiry_shows_it(api: httpx.AsyncClient, queue: Queue) -> None:
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    created = await api.post("/v1/jobs", json={"type": "t", "expires_at": expires_at.isoformat()})
    assert created.status_code == 201, created.text
    job = created.json()
    assert datetime.fromisoformat(job["expires_at"]) == expires_at
    shown = (await api.get(f"/v1/jobs/{job['id']}")).json()
    assert datetime.fromisoformat(shown["expires_at"]) == expires_at
    relative = (await api.post("/v1/jobs", json={"type": "t", "expires_in": 60})).json()
    stored = await queue.get_job(relative["id"])
    assert stored.expires_at is not None and stored.status == JobStatus.PENDING
    assert datetime.fromisoformat(relative["expires_at"]) == stored.expires_at


@pytest.mark.parametrize(
    "body",
    [
        {"type": "t", "expires_at": "2030-01-01T09:00:00"},
        {"type": "t", "expires_in": -1},
        {"type": "t", "expires_in": 0},
        {"type": "t", "delay": 60, "expires_in": 60},
        {"type": "t", "expires_in": 60, "expires_at": "2030-01-01T09:00:00Z"},
        {"type": "t", "run_at": "2030-01-01T09:00:00Z", "expires_at": "2030-01-01T09:00:00Z"},
    ],
)
async def test_bad_expiry_is_refused(
    api: httpx.AsyncClient, queue: Queue, body: dict[str, object]
) -> None:
    refused = await api.post("/v1/jobs", json=body)
    assert refused.status_code in (400, 422), refused.text
    assert (await queue.backend.list_jobs()).jobs == []

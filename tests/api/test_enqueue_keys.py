"""The HTTP API's enqueue options for unique keys, debounce and batches: each taken as the
library takes it, and each bad value refused with a 422 that names it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from queuekit import Queue, Tasks, Worker, connect

from .conftest import client_for

tasks = Tasks()


@tasks.task()
async def report(account: str, day: str) -> str:
    return f"{account} {day}"


@tasks.task()
async def flaky() -> None:
    raise RuntimeError("down")


@tasks.task()
async def alert() -> str:
    return "paged"


async def post(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    created = await api.post("/v1/jobs", json=body)
    assert created.status_code == 201, created.text
    job: dict[str, Any] = created.json()
    return job


async def test_once_per_payload_for_a_period(api: httpx.AsyncClient, queue: Queue) -> None:
    options = {"type": "report", "unique_payload": True, "unique_for": 86400}
    first = await post(api, {**options, "payload": {"account": "a", "day": "2026-11-29"}})
    assert first["unique_key"].startswith("report#")
    again = await post(api, {**options, "payload": {"day": "2026-11-29", "account": "a"}})
    assert again["id"] == first["id"]  # the same payload, its keys in another order

    await Worker(queue, tasks).run_until_empty()
    held = await post(api, {**options, "payload": {"account": "a", "day": "2026-11-29"}})
    assert (held["id"], held["status"]) == (first["id"], "completed")  # its day is not over
    other = await post(api, {**options, "payload": {"account": "b", "day": "2026-11-29"}})
    assert other["id"] != first["id"] and other["status"] == "pending"


async def test_unique_states_keep_a_dead_jobs_key(api: httpx.AsyncClient, queue: Queue) -> None:
    body = {
        "type": "flaky",
        "max_attempts": 1,
        "unique_key": "sync:a",
        "unique_states": ["dead", "completed"],
    }
    first = await post(api, body)
    await Worker(queue, tasks).run_until_empty()
    held = await post(api, body)
    assert (held["id"], held["status"]) == (first["id"], "dead")


async def test_replace_gives_the_holder_this_payload_and_time(api: httpx.AsyncClient) -> None:
    first = await post(api, {"type": "t", "payload": 1, "unique_key": "k", "delay": 3600})
    kept = await post(api, {"type": "t", "payload": 2, "unique_key": "k"})
    assert (kept["id"], kept["payload"]) == (first["id"], 1)
    replaced = await post(
        api, {"type": "t", "payload": 3, "unique_key": "k", "on_conflict": "replace"}
    )
    assert (replaced["id"], replaced["payload"]) == (first["id"], 3)
    assert _time(replaced["scheduled_at"]) < _time(first["scheduled_at"])
    assert replaced["created_at"] == first["created_at"]


async def test_debounce_pushes_one_job_back(api: httpx.AsyncClient) -> None:
    body = {"type": "reindex", "debounce_key": "shop-1", "debounce_max": 600, "delay": 60}
    first = await post(api, {**body, "payload": 1})
    assert first["debounce_key"] == "shop-1"
    later = await post(api, {**body, "payload": 2, "delay": 120})
    assert (later["id"], later["payload"]) == (first["id"], 2)
    assert _time(later["scheduled_at"]) > _time(first["scheduled_at"])
    shown = (await api.get(f"/v1/jobs/{first['id']}")).json()
    assert (shown["debounce_key"], shown["payload"]) == ("shop-1", 2)


async def test_batch_id_is_stored_and_searched(api: httpx.AsyncClient) -> None:
    member = await post(api, {"type": "t", "batch_id": "nightly-42"})
    await post(api, {"type": "t"})
    assert member["batch_id"] == "nightly-42"
    listed = (await api.get("/v1/jobs", params={"batch_id": "nightly-42"})).json()
    assert [job["id"] for job in listed["jobs"]] == [member["id"]]
    bad = await api.get("/v1/jobs", params={"batch_id": "bad id"})
    assert bad.status_code == 422 and bad.json()["error"].startswith("batch_id: ")


async def test_trigger_edges_are_taken(api: httpx.AsyncClient, queue: Queue) -> None:
    dies = await post(api, {"type": "flaky", "max_attempts": 1})
    lives = await post(api, {"type": "report", "payload": {"account": "a", "day": "d"}})
    on_dead = await post(
        api, {"type": "alert", "after": [{"id": dies["id"], "on_failure": "trigger"}]}
    )
    unneeded = await post(
        api, {"type": "alert", "after": [{"id": lives["id"], "on_failure": "trigger"}]}
    )
    assert on_dead["status"] == unneeded["status"] == "waiting"
    shown = (await api.get(f"/v1/jobs/{on_dead['id']}")).json()
    assert shown["parents"] == [{"id": dies["id"], "on_failure": "trigger"}]

    await Worker(queue, tasks).run_until_empty()
    assert (await api.get(f"/v1/jobs/{on_dead['id']}")).json()["status"] == "completed"
    cancelled = (await api.get(f"/v1/jobs/{unneeded['id']}")).json()
    assert (cancelled["status"], cancelled["last_error"]) == ("cancelled", "no parent died")


BAD = [
    ({"unique_payload": "yes"}, "unique_payload: Input should be a valid boolean"),
    ({"unique_key": "k", "unique_for": 0}, "unique_for: Input should be greater than 0"),
    ({"unique_key": "k", "unique_for": "1d"}, "unique_for: Input should be a valid number"),
    ({"unique_key": "k", "unique_for": 4e9}, "unique_for: Input should be less than or equal"),
    ({"unique_key": "k", "unique_states": "dead"}, "unique_states: Input should be a valid list"),
    ({"unique_key": "k", "unique_states": []}, "unique_states: List should have at least 1"),
    (
        {"unique_key": "k", "unique_states": ["running"]},
        "unique_states.0: Input should be 'cancelled', 'completed' or 'dead'",
    ),
    ({"unique_key": "k", "on_conflict": "merge"}, "on_conflict: Input should be 'return' or"),
    ({"unique_for": 60}, "unique_for needs unique_key= or unique_payload=True"),
    ({"unique_states": ["dead"]}, "unique_states needs unique_key="),
    ({"on_conflict": "replace"}, "on_conflict needs unique_key="),
    ({"debounce_max": 60}, "debounce_max needs debounce_key="),
    ({"debounce_key": "d", "debounce_max": -1}, "debounce_max: Input should be greater than 0"),
    ({"debounce_key": ""}, "debounce_key: String should have at least 1 character"),
    ({"unique_key": "k", "debounce_key": "d"}, "a unique key or a debounce key, not both"),
    ({"unique_payload": True, "debounce_key": "d"}, "a unique key or a debounce key, not both"),
    ({"batch_id": "no spaces"}, "batch_id: String should match pattern"),
    (
        {"after": [{"id": "a", "on_failure": "trigger"}, "b"]},
        "give all its parents on_failure trigger, or none",
    ),
]


@pytest.mark.parametrize(("options", "error"), BAD, ids=[str(options) for options, _ in BAD])
async def test_bad_values_are_refused_by_name(options: dict[str, Any], error: str) -> None:
    # Refused before the backend is asked: one backend is enough.
    async with client_for(connect("memory://")) as api:
        refused = await api.post("/v1/jobs", json={"type": "t", **options})
        assert refused.status_code == 422, refused.text
        assert error in refused.json()["error"]
        bulk = await api.post("/v1/jobs/bulk", json={"jobs": [{"type": "t", **options}]})
        assert bulk.status_code == 422 and error.rpartition(": ")[2] in bulk.json()["error"]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)

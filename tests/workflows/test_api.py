"""The HTTP API's side of workflows: enqueue with `after`/`workflow_id`, a job's edges, a
workflow's jobs, the waiting count."""

from __future__ import annotations

import httpx

from queuekit import Queue, chain, new_job


async def test_enqueue_after_and_read_the_edges(api: httpx.AsyncClient, queue: Queue) -> None:
    first = (await api.post("/v1/jobs", json={"type": "fetch", "workflow_id": "wf"})).json()
    second = (await api.post("/v1/jobs", json={"type": "fetch", "workflow_id": "wf"})).json()
    created = await api.post(
        "/v1/jobs",
        json={
            "type": "merge",
            "workflow_id": "wf",
            "after": [first["id"], {"id": second["id"], "on_failure": "ignore"}],
        },
    )
    assert created.status_code == 201, created.text
    child = created.json()
    assert child["status"] == "waiting" and child["workflow_id"] == "wf"

    shown = (await api.get(f"/v1/jobs/{child['id']}")).json()
    assert shown["parents"] == [
        {"id": first["id"], "on_failure": "cancel"},
        {"id": second["id"], "on_failure": "ignore"},
    ]
    assert shown["dependents"] == []
    parent = (await api.get(f"/v1/jobs/{first['id']}")).json()
    assert parent["dependents"] == [child["id"]]
    listed = (await api.get("/v1/jobs", params={"workflow_id": "wf"})).json()
    assert {job["id"] for job in listed["jobs"]} == {first["id"], second["id"], child["id"]}
    assert all(job["parents"] is None for job in listed["jobs"])  # one job's read only

    stats = (await api.get("/v1/queues/default")).json()
    assert (stats["waiting"], stats["pending"]) == (1, 2)


async def test_enqueue_refuses_bad_parents(api: httpx.AsyncClient) -> None:
    unknown = await api.post("/v1/jobs", json={"type": "t", "after": ["missing"]})
    assert unknown.status_code == 422 and "no job 'missing'" in unknown.json()["error"]
    for after in (
        [{"id": "x", "on_failure": "later"}],
        [{"id": "x", "extra": 1}],
        [{"on_failure": "run"}],
        "x",
        [1],
    ):
        refused = await api.post("/v1/jobs", json={"type": "t", "after": after})
        assert refused.status_code == 422, (after, refused.text)


async def test_bulk_enqueue_of_a_chain(api: httpx.AsyncClient) -> None:
    jobs = [
        {"type": "a", "id": "step-1", "workflow_id": "bulk"},
        {"type": "b", "id": "step-2", "workflow_id": "bulk", "after": ["step-1"]},
    ]
    created = await api.post("/v1/jobs/bulk", json={"jobs": jobs})
    assert created.status_code == 201, created.text
    assert [job["status"] for job in created.json()["jobs"]] == ["pending", "waiting"]


async def test_a_workflows_jobs_paged(api: httpx.AsyncClient, queue: Queue) -> None:
    flow = chain(*(new_job("step") for _ in range(5))).with_id("five")
    await queue.enqueue_many(flow)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = (await api.get("/v1/workflows/five", params=params)).json()
        seen += [job["id"] for job in page["jobs"]]
        assert all(job["workflow_id"] == "five" for job in page["jobs"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [job.id for job in reversed(flow.jobs)]  # newest first
    statuses = (await api.get("/v1/workflows/five")).json()["jobs"]
    assert [job["status"] for job in statuses] == ["waiting"] * 4 + ["pending"]
    missing = await api.get("/v1/workflows/none-such")
    assert missing.status_code == 404
    assert (await api.get("/v1/workflows/five", params={"limit": 0})).status_code == 422

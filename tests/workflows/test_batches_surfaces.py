"""Batches as the API and the dashboard show them: a batch's counts (`GET /v1/batches/{id}`),
its jobs listed and searched, and a job's page linking its batch with the batch's counts."""

from __future__ import annotations

import re

import httpx

from queuekit import NewJob, Queue, Tasks, Worker, Workflow, batch, new_job
from queuekit.api import create_app
from queuekit.web.api import openapi_document

from ..api.conftest import client_for

tasks = Tasks()


@tasks.task()
async def resize(n: int) -> int:
    if n == 2:
        raise ValueError("not an image")
    return n


@tasks.task()
async def summary() -> None:
    return None


def nightly() -> tuple[list[NewJob], NewJob, Workflow]:
    members = [new_job("resize", {"n": n}, max_attempts=1) for n in range(4)]
    on_finish = new_job("summary")
    return members, on_finish, batch(*members, on_finish=on_finish, id="nightly-7")


async def test_a_batchs_counts(api: httpx.AsyncClient, queue: Queue) -> None:
    members, on_finish, flow = nightly()
    await queue.enqueue_many(flow)
    counts = await api.get("/v1/batches/nightly-7")
    assert counts.status_code == 200, counts.text
    assert counts.json() == {
        "waiting": 0,
        "pending": 4,
        "running": 0,
        "failed": 0,
        "completed": 0,
        "dead": 0,
        "cancelled": 0,
        "total": 4,  # the callback is not one of the batch's jobs
    }
    await Worker(queue, tasks).run_until_empty()
    done = (await api.get("/v1/batches/nightly-7")).json()
    assert (done["completed"], done["dead"], done["total"]) == (3, 1, 4)
    assert (await queue.get_job(on_finish.id)).status == "completed"

    listed = (await api.get("/v1/jobs", params={"batch_id": "nightly-7", "limit": 2})).json()
    assert [job["batch_id"] for job in listed["jobs"]] == ["nightly-7", "nightly-7"]
    rest = await api.get(
        "/v1/jobs", params={"batch_id": "nightly-7", "cursor": listed["next_cursor"]}
    )
    seen = {job["id"] for job in listed["jobs"] + rest.json()["jobs"]}
    assert seen == {job.id for job in members}

    for missing in ("/v1/batches/nope", "/v1/batches/bad%20id"):
        response = await api.get(missing)
        assert response.status_code == 404 and "no batch with id" in response.json()["error"]


async def test_the_batch_route_is_guarded_like_the_others(queue: Queue) -> None:
    await queue.enqueue_many(nightly()[2])
    async with client_for(queue, api_key="a-key-of-sixteen-chars") as anonymous:
        refused = await anonymous.get("/v1/batches/nightly-7")
        assert refused.status_code == 401
        assert refused.json() == {"error": "missing or wrong API key"}
        other = await anonymous.get("/v1/batches/nightly-7", headers={"Authorization": "x"})
        assert other.status_code == 401


def test_the_document_shows_batches() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    operation = document["paths"]["/v1/batches/{batch_id}"]["get"]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/BatchCounts"}
    assert set(schemas["BatchCounts"]["required"]) == {
        "waiting",
        "pending",
        "running",
        "failed",
        "completed",
        "dead",
        "cancelled",
        "total",
    }
    assert {"batch_id", "debounce_key"} <= set(schemas["Job"]["properties"])
    listing = document["paths"]["/v1/jobs"]["get"]["parameters"]
    assert "batch_id" in {parameter["name"] for parameter in listing}
    new_job_schema = schemas["NewJob"]["properties"]
    assert {"unique_payload", "unique_for", "unique_states", "on_conflict"} <= set(new_job_schema)
    assert {"debounce_key", "debounce_max", "batch_id"} <= set(new_job_schema)


def dashboard(queue: Queue) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(queue))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def test_a_jobs_page_links_its_batch_with_its_counts(queue: Queue) -> None:
    members, on_finish, flow = nightly()
    await queue.enqueue_many(flow)
    debounced = await queue.enqueue("reindex", debounce_key="shop-1", delay=60)
    async with dashboard(queue) as http:
        page = (await http.get(f"/dashboard/jobs/{members[0].id}")).text
        link = re.search(r'<p data-batch><a href="([^"]+)">nightly-7</a>', page)
        assert link is not None and link[1] == "/dashboard/jobs?batch=nightly-7"
        assert 'data-count="pending">4 pending<' in page
        assert 'data-count="total">4 in all<' in page

        await Worker(queue, tasks).run_until_empty()
        fragment = (await http.get(f"/dashboard/fragments/jobs/{on_finish.id}")).text
        assert "Callback of batch" in fragment
        assert 'data-count="completed">3 completed<' in fragment
        assert 'data-count="dead">1 dead<' in fragment

        alone = (await http.get(f"/dashboard/jobs/{debounced.id}")).text
        assert "<h2>Batch</h2>" not in alone
        assert "<th>debounce key</th><td>shop-1</td>" in alone


async def test_the_jobs_search_by_batch(queue: Queue) -> None:
    members, _, flow = nightly()
    await queue.enqueue_many(flow)
    await queue.enqueue("resize", {"n": 9})
    async with dashboard(queue) as http:
        page = (await http.get("/dashboard/jobs", params={"batch": "nightly-7"})).text
        listed = re.findall(r'<tr data-job="([^"]+)">', page)
        assert sorted(listed) == sorted(job.id for job in members)
        assert 'name="batch" value="nightly-7"' in page
        assert "data-matching" not in page  # actions on every match go by queue, status, type
        assert 'type="hidden" name="batch" value="nightly-7"' in page  # kept after an action
        fragment = await http.get("/dashboard/fragments/jobs", params={"batch": "nightly-7"})
        assert sorted(re.findall(r'<tr data-job="([^"]+)">', fragment.text)) == sorted(listed)
        bad = await http.get("/dashboard/jobs", params={"batch": "no spaces"})
        assert bad.status_code == 422 and "batch id" in bad.text


async def test_a_callbacks_page_lists_its_first_parents(queue: Queue) -> None:
    members = [new_job("resize", {"n": n}) for n in range(130)]
    on_success = new_job("summary")
    await queue.enqueue_many(batch(*members, on_success=on_success, id="wide"))
    async with dashboard(queue) as http:
        page = (await http.get(f"/dashboard/jobs/{on_success.id}")).text
        parents = page.split("data-parents", 1)[1].split("</ul>", 1)[0]
        assert parents.count("<li ") == 100 and f'data-job="{members[0].id}"' in parents
        more = re.search(r"<p class=\"muted\" data-more-parents>(.*?)</p>", page)
        assert more is not None
        assert more[1] == 'and 30 more: <a href="/dashboard/jobs?batch=wide">the batch\'s jobs</a>'
        assert 'data-count="total">130 in all<' in page

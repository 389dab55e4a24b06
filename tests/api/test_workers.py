"""GET /v1/workers and POST /v1/workers/{id}/drain, on each backend, behind the one auth check."""

from __future__ import annotations

import httpx

from queuekit import Queue, Tasks, Worker
from queuekit.api import create_app
from queuekit.web import models

from ..waiting import eventually
from ..worker.options import FAST
from .conftest import KEY, client_for


async def test_list_and_drain_workers(api: httpx.AsyncClient, queue: Queue) -> None:
    assert (await api.get("/v1/workers")).json() == {"workers": []}
    worker = Worker(
        queue, Tasks(), queues={"a": 3}, worker_id="api-worker", registry_interval=0.2, **FAST
    )
    async with worker:

        async def listed() -> bool:
            return len((await api.get("/v1/workers")).json()["workers"]) == 1

        await eventually(listed, "the worker listed")
        page = models.Workers.model_validate((await api.get("/v1/workers")).json())
        (shown,) = page.workers
        assert (shown.id, shown.state, shown.queues, shown.running) == (
            "api-worker",
            "running",
            {"a": 3},
            0,
        )

        unknown = await api.post("/v1/workers/nobody/drain")
        assert unknown.status_code == 404
        assert unknown.json() == {"error": "no running worker has id 'nobody'"}
        drained = await api.post("/v1/workers/api-worker/drain")
        assert drained.status_code == 200
        assert models.Worker.model_validate(drained.json()).state == "draining"

        async def gone() -> bool:
            return bool((await api.get("/v1/workers")).json() == {"workers": []})

        await eventually(gone, "the drained worker left the list")
    assert (await api.post("/v1/workers/api-worker/drain")).status_code == 404


async def test_workers_need_the_key_and_a_same_origin_post(queue: Queue) -> None:
    await queue.backend.beat_worker("w", "{}", ttl=300)
    async with client_for(queue, api_key=KEY) as http:
        assert (await http.get("/v1/workers")).status_code == 401
        assert (await http.post("/v1/workers/w/drain")).status_code == 401
        cross_site = {
            "Authorization": f"Bearer {KEY}",
            "Origin": "http://evil.example",
            "Sec-Fetch-Site": "cross-site",
        }
        assert (await http.post("/v1/workers/w/drain", headers=cross_site)).status_code == 403
    ((_, draining),) = [(w.worker_id, w.draining) for w in await queue.backend.list_workers()]
    assert not draining
    # Without a key the app answers only on loopback names.
    keyless = httpx.ASGITransport(app=create_app(queue))
    async with httpx.AsyncClient(transport=keyless, base_url="http://example.com") as far:
        assert (await far.get("/v1/workers")).status_code == 400

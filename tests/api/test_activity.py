"""GET /v1/queues/{name}/activity: the queue's minutes, with percentiles; bad queries refused."""

from __future__ import annotations

import httpx
import pytest

from queuekit import Queue
from queuekit.activity import BUCKET_BOUNDS, BUCKETS, MAX_MINUTES, ActivityCounts, bucket_of


async def test_activity_by_minute(api: httpx.AsyncClient, queue: Queue) -> None:
    run = [0] * BUCKETS
    run[bucket_of(0.2)] = 4
    await queue.backend.add_activity(
        [ActivityCounts("mail", enqueued=5, completed=4, run=tuple(run))], keep=3600
    )
    await queue.enqueue("t", queue="mail")  # counted when this handle writes, not yet

    reply = await api.get("/v1/queues/mail/activity", params={"minutes": 5})
    assert reply.status_code == 200
    body = reply.json()
    assert body["queue"] == "mail" and body["bucket_bounds"] == list(BUCKET_BOUNDS)
    (minute,) = body["minutes"]
    assert (minute["enqueued"], minute["completed"], minute["failed"]) == (5, 4, 0)
    assert 0.1 < minute["run_p50"] <= 0.25 and minute["wait_p50"] is None
    assert minute["at"].endswith(":00+00:00")

    empty = await api.get("/v1/queues/other/activity")
    assert empty.json() == {"queue": "other", "bucket_bounds": list(BUCKET_BOUNDS), "minutes": []}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/queues/mail/activity?minutes=0",
        f"/v1/queues/mail/activity?minutes={MAX_MINUTES + 1}",
        "/v1/queues/mail/activity?minutes=ten",
        "/v1/queues/mail/activity?hours=1",
        "/v1/queues/bad%20name/activity",
    ],
)
async def test_bad_activity_queries(api: httpx.AsyncClient, path: str) -> None:
    assert (await api.get(path)).status_code == 422

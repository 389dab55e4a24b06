"""The dashboard's activity charts: the overview's sparklines and a queue's page (jobs, times,
depth), from the backend's minutes, on every backend; the chart geometry itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from queuekit import Queue
from queuekit.activity import BUCKETS, DEPTH_CAP, ActivityCounts, Minute, bucket_of, depths
from queuekit.api import create_app
from queuekit.web.charts import (
    HEIGHT,
    SPARK_HEIGHT,
    depth_chart,
    jobs_chart,
    slots,
    sparkline,
    times_chart,
)


def times(*seconds: float) -> tuple[int, ...]:
    counts = [0] * BUCKETS
    for value in seconds:
        counts[bucket_of(value)] += 1
    return tuple(counts)


@pytest.fixture
async def http(queue: Queue) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(queue))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def test_a_queue_page_charts_its_minutes(queue: Queue, http: httpx.AsyncClient) -> None:
    await queue.enqueue("t", queue="mail")
    await queue.backend.add_activity(
        [ActivityCounts("mail", enqueued=7, completed=5, dead=2, wait=times(0.01), run=times(2.0))],
        keep=3600,
    )
    overview = await http.get("/dashboard/")
    assert 'href="/dashboard/queues/mail"' in overview.text
    assert "7 finished in the last 60 minutes, at most 7 a minute" in overview.text

    page = await http.get("/dashboard/queues/mail")
    assert page.status_code == 200
    assert "<title>Queue mail · queuekit</title>" in page.text
    assert "Jobs per minute over the last 60 minutes: 7 enqueued, 5 completed" in page.text
    assert re.search(r"wait p50 <strong>\d", page.text)
    # The write created the minute, so it sampled the one ready job.
    assert "Ready jobs, sampled once a minute, over the last 60 minutes: latest 1" in page.text
    assert page.text.count("<polyline") == 9
    # Chart times go out in UTC, for dashboard.js to show in the viewer's zone.
    assert re.search(r'data-local="clock" data-at="[^"]+:00\+00:00">\d\d:\d\d<', page.text)

    wide = await http.get("/dashboard/queues/mail?span=24h")
    assert "over the last 24 hours" in wide.text and 'aria-current="true">24h<' in wide.text
    fragment = await http.get("/dashboard/fragments/queues/mail?span=6h")
    assert fragment.status_code == 200 and "over the last 6 hours" in fragment.text
    assert "<html" not in fragment.text

    refused = await http.get("/dashboard/queues/bad%20name")
    assert refused.status_code == 422


def minute(at: datetime, depth: int | None = None, **counts: int) -> Minute:
    return ActivityCounts("q", **counts).at(at, depth)  # type: ignore[arg-type]


def test_a_minute_without_a_depth_sample_carries_the_last_one() -> None:
    end = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
    at = [end - timedelta(minutes=n) for n in (4, 3, 2, 1, 0)]
    kept = [minute(at[1], depth=7), minute(at[2]), minute(at[3], depth=2)]
    assert depths(slots(kept, end, 5)) == [None, 7, 7, 2, 2]
    chart = depth_chart(kept, end, 5)
    (line,) = chart.lines
    assert line.summary == "2" and chart.top == "7"
    heights = [float(point.split(",")[1]) for point in line.points.split()]
    assert len(heights) == 4 and heights[0] == heights[1] == 6.0  # 7 at the top, carried
    assert depth_chart([minute(end, depth=DEPTH_CAP)], end, 1).lines[0].summary == f"{DEPTH_CAP:,}+"
    assert depth_chart([], end, 3).lines[0].summary == "—"


def test_slots_fill_the_minutes_none_was_kept() -> None:
    end = datetime(2026, 11, 29, 12, 30, 41, tzinfo=UTC)
    kept = minute(datetime(2026, 11, 29, 12, 28, tzinfo=UTC), completed=3)
    assert slots([kept], end, 4) == [None, kept, None, None]


def test_charts_scale_to_their_largest_value() -> None:
    end = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
    busy = minute(end - timedelta(minutes=1), completed=40, enqueued=10)
    chart = jobs_chart([busy], end, 3)
    assert chart.top == "40/min" and (chart.start, chart.end) == ("12:28", "12:30")
    completed = next(line for line in chart.lines if line.kind == "completed")
    heights = [float(point.split(",")[1]) for point in completed.points.split()]
    assert heights[0] == heights[2] == HEIGHT - 18 and heights[1] == 6.0
    assert completed.summary == "40"

    slow = ActivityCounts("q", wait=times(0.002), run=times(30.0, 30.0)).at(end)
    latency = times_chart([slow], end, 2)
    run = next(line for line in latency.lines if line.kind == "run")
    assert run.summary.endswith("s") and len(set(run.points.split())) == 1
    assert next(line for line in latency.lines if line.kind == "wait").summary.endswith("ms")

    line = sparkline([busy], end, 3)
    assert line.label == "40 finished in the last 3 minutes, at most 40 a minute"
    assert [float(p.split(",")[1]) for p in line.points.split()][1] == 1.0
    assert sparkline([], end).label.startswith("0 finished") and SPARK_HEIGHT == 24

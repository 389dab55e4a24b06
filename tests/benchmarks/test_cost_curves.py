"""The cost curves benchmark measures every curve on every backend (its figures are not
checked: speed lives in `make bench`)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

import queuekit
from benchmarks import cost_curves, limits_cost
from benchmarks.cost_curves import measure, report
from benchmarks.ping_job import pinging

from ..redis.server import require_redis_url
from ..setups import require_postgres_dsn


@pytest.fixture(autouse=True)
def test_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers the tests use (the benchmark's defaults may not run here)."""
    monkeypatch.setattr(limits_cost, "POSTGRES", require_postgres_dsn())
    monkeypatch.setattr(limits_cost, "REDIS", require_redis_url())
    monkeypatch.setattr(cost_curves, "REDIS", require_redis_url())


async def test_every_curve_is_measured_on_every_backend() -> None:
    backends = ["memory", "sqlite", "postgres", "redis"]
    curves = {"backlog": [0, 300], "queues": [1, 7], "delayed": [300]}
    results = await measure(backends, curves, jobs=60, concurrency=4)
    assert list(results) == backends
    for points in results.values():
        assert [(p.curve, p.size) for p in points] == [
            (curve, size) for curve, sizes in curves.items() for size in sizes
        ]
        assert all(p.stats_ms > 0 and p.claim_ms > 0 and p.drain_per_second > 0 for p in points)
    text = report(results)
    assert "| redis | queues | 7 |" in text and "| postgres | delayed | 300 |" in text


async def test_a_drain_that_cannot_finish_ends_at_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asked for more jobs than there are, the drain ends at `DRAIN_SECONDS` and counts the
    jobs done by then, not the jobs asked for."""
    monkeypatch.setattr(cost_curves, "DRAIN_SECONDS", 1.0)
    async with pinging(Redis.from_url(require_redis_url())), queuekit.connect("memory://") as queue:
        await queue.enqueue_many(queuekit.new_job("measured") for _ in range(5))
        rate = await cost_curves._drain(queue, ["default"], jobs=1000, concurrency=4)
    assert rate <= 6  # at most the 5 jobs there are, over about the second allowed

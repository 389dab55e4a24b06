"""The cluster scaling benchmark runs every phase on both clusters (its figures are not
checked: speed lives in `make bench`)."""

from __future__ import annotations

from benchmarks.cluster_scale import SIZES, Settings, measure, report

from ..redis.server import require_programs


async def test_every_phase_runs_on_one_and_three_primaries() -> None:
    require_programs("redis-server", "redis-cli")  # skips, and fails under CI=true
    settings = Settings(
        single=40, bulk=100, drain=40, queues=12, processes=1, tasks=4, workers=1, concurrency=4
    )
    results = await measure(settings)
    assert list(results) == list(SIZES)
    for figures in results.values():
        assert figures.single > 0 and figures.bulk > 0 and figures.drain > 0
    assert "| 3 / 1 |" in report(results, settings)

"""The limits benchmark drains every kind to the end on every backend (its figures are not
checked: speed lives in `make bench`)."""

from __future__ import annotations

import pytest

from benchmarks import limits_cost
from benchmarks.limits_cost import measure, report

from ..redis.server import require_redis_url
from ..setups import require_postgres_dsn


@pytest.fixture(autouse=True)
def test_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers the tests use (the benchmark's defaults may not run here)."""
    monkeypatch.setattr(limits_cost, "POSTGRES", require_postgres_dsn())
    monkeypatch.setattr(limits_cost, "REDIS", require_redis_url())


async def test_every_kind_is_measured_on_every_backend() -> None:
    backends = ["memory", "sqlite", "postgres", "redis"]
    results = await measure(backends, jobs=40, concurrency=4, repeat=1, key_counts=[10, 50])
    assert list(results) == backends
    for drains, costs in results.values():
        assert [drain.kind for drain in drains] == [
            "unlimited",
            "concurrency=4",
            "1,000 keys, per_key=1",
        ]
        assert all(drain.jobs_per_second > 0 for drain in drains)
        assert set(costs) == {10, 50}
    assert "vs unlimited" in report(results)

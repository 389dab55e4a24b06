"""The CPU profile runs each phase to its end, shares out the profiled time, and reads what the
phase asked of its store and how its claims went (no timing is checked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import cpu_profile, limits_cost, probe

from ..redis.server import require_redis_url
from ..setups import require_postgres_dsn


@pytest.fixture(autouse=True)
def probe_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs' probe lines go to a file of the test's own; the jobs do nothing else."""
    monkeypatch.setenv(probe.PROBE_FILE_ENV, str(tmp_path / "probe.txt"))
    monkeypatch.setenv(probe.SHAPE_ENV, "noop")
    monkeypatch.setattr(probe, "_fd", None)


@pytest.mark.parametrize("phase", sorted(cpu_profile.PHASES))
async def test_a_phase_is_profiled_by_package_and_function(phase: str, tmp_path: Path) -> None:
    result = await cpu_profile.profile("memory", cpu_profile.PHASES[phase], 200, 10, top=10**6)

    assert result.cpu_us_per_job > 0
    packages = dict(result.packages)
    assert sum(packages.values()) == pytest.approx(1.0)
    assert cpu_profile.IDLE not in packages
    assert ("queuekit.worker" if phase == "drain" else "queuekit.queue") in packages
    claims = dict(result.claims)
    if phase == "drain":
        assert probe.tally(str(tmp_path / "probe.txt"), 200).missing == 0
        # Every job came from a claim; the last claims, which found none, count too.
        assert claims["jobs per claim"] * claims["claims per job"] == pytest.approx(1.0)
        assert 0 < claims["share of the time a claim is under way"] <= 1
    else:
        assert claims == {}


@pytest.mark.parametrize("backend", ["postgres", "redis"])
async def test_a_phase_reports_what_it_asked_of_its_store(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits_cost, "POSTGRES", require_postgres_dsn())
    monkeypatch.setattr(limits_cost, "REDIS", require_redis_url())

    result = await cpu_profile.profile(backend, cpu_profile.PHASES["drain"], 200, 10, top=10)

    store = dict(result.store)
    if backend == "postgres":
        # Each job's row, inserted once by the fill and changed by the drain; counted only
        # once the phase's sessions ended.
        assert store["queuekit_jobs inserts"] == 1.0
        assert store["queuekit_jobs updates"] >= 1.0
        assert store["queuekit_jobs indexes"] >= 1 and store["WAL bytes"] > 0
    else:
        listed = sum(per_job for name, per_job in result.store if name != "commands")
        assert 1.0 <= listed <= store["commands"]

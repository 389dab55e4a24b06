"""The CPU profile runs each phase to its end and shares out the profiled time (its figures are
not checked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import cpu_profile, probe


@pytest.mark.parametrize("phase", sorted(cpu_profile.PHASES))
async def test_a_phase_is_profiled_by_package_and_function(
    phase: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(probe.PROBE_FILE_ENV, str(tmp_path / "probe.txt"))
    monkeypatch.setenv(probe.SHAPE_ENV, "noop")
    monkeypatch.setattr(probe, "_fd", None)

    result = await cpu_profile.profile("memory", cpu_profile.PHASES[phase], 200, 10, top=10**6)

    assert result.cpu_us_per_job > 0
    packages = dict(result.packages)
    assert sum(packages.values()) == pytest.approx(1.0)
    assert cpu_profile.IDLE not in packages
    assert ("queuekit.worker" if phase == "drain" else "queuekit.queue") in packages
    if phase == "drain":
        assert probe.tally(str(tmp_path / "probe.txt"), 200).missing == 0

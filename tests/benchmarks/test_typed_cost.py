"""The typed-payload cost benchmark runs both tasks to the end (its figures are not checked)."""

from __future__ import annotations

from benchmarks.typed_cost import measure


async def test_both_tasks_are_measured() -> None:
    best = await measure(jobs=20, repeat=1)
    assert set(best) == {"plain", "typed"}
    assert all(enqueue >= 0 and drain >= 0 for enqueue, drain in best.values())

"""examples/workflows.py runs as written, on SQLite, and its workflow ends as it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_workflow_example_orders_from_the_cheapest(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "examples/workflows.py", f"sqlite:///{tmp_path / 'workflows.db'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert lines[0].startswith("enqueued workflow ") and lines[0].endswith(": 5 jobs")
    assert "ConnectionError: initech did not answer" in lines[1]
    statuses = [line.split()[:2] for line in lines[2:7]]
    assert statuses == [
        ["ask_for_quote", "completed"],
        ["ask_for_quote", "completed"],
        ["ask_for_quote", "dead"],
        ["pick_cheapest", "completed"],
        ["place_order", "completed"],
    ]
    assert lines[-1] == "ordered printer paper from globex at 9.90"

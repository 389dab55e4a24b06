"""examples/batches.py and examples/uniqueness.py run as written, on the memory backend (their
default), and print what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_example(name: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, f"examples/{name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.splitlines()


def test_the_batch_example_reports_its_counts() -> None:
    lines = run_example("batches.py")
    assert lines[0].startswith("enqueued batch ") and lines[0].endswith(": 11 jobs and 2 callbacks")
    assert lines[1:] == [
        "holiday: 10 of 11 thumbnails made, 1 failed",
        "holiday: a file could not be made a thumbnail",
        "completed=10 dead=1 total=11",
        "dead: notes.txt",
    ]


def test_the_uniqueness_example_sends_once_and_debounces() -> None:
    assert run_example("uniqueness.py") == [
        "3 digests asked for, 2 jobs stored",
        "ada asks again: job completed, the same job: True",
        "digests sent: ada, bob",
        "5 changes, 1 job, payload {'shop': 7, 'change': 'change 5'}",
        "shop 7 reindexed after change 5",
        "a change after it ran: a new job: True",
    ]

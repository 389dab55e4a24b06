"""What the CLI prints: safe for a terminal, whole at 80 columns, one row per line when piped."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import anyio
import pytest

import queuekit
from queuekit import JobFailedError, Tasks, Worker
from queuekit.cli.output import clean, table

from ..worker.options import FAST
from .test_cli import ok

HOSTILE = "before\x1b]0;pwned\x07\x1b[2J\x1b[H\x9b31m\rafter\x1b]8;;http://x\x1b\\"
"""An error message that would set the window title, clear the screen and color the text."""
CONTROLS = "\x1b\x07\x9b\r\x08\x00"


def test_clean_removes_whole_sequences_and_stray_controls() -> None:
    assert clean(HOSTILE) == "beforeafter"
    assert clean("a\x1b[38;5;196mb\x1b[0m\tc\nd") == "ab\tc\nd"
    assert clean("unterminated \x1b]0;title") == "unterminated 0;title"  # shown, harmless
    assert clean("\x00bell\x07 del\x7f c1\x85 esc\x1bc") == "bell del c1 esc"
    assert clean("plain text, ünïcode, 日本") == "plain text, ünïcode, 日本"


async def test_show_prints_no_terminal_control_sequences(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    tasks = Tasks()

    @tasks.task()
    async def hostile(text: str) -> None:
        raise RuntimeError(HOSTILE)

    async with queuekit.connect(url) as queue:
        job = await hostile.with_options(max_attempts=1, headers={"h": "\x9b2J"}).enqueue(
            queue, "\x9b2J\x1b[2J"
        )
        async with Worker(queue, tasks, **FAST):
            with pytest.raises(JobFailedError):
                await queue.result(job.id, timeout=20)

    shown = await anyio.to_thread.run_sync(lambda: ok("jobs", "show", job.id, url=url))
    assert "RuntimeError: beforeafter" in shown and "last error" in shown
    assert not any(char in shown for char in CONTROLS), repr(shown)
    raw = await anyio.to_thread.run_sync(lambda: ok("jobs", "show", job.id, "--json", url=url))
    assert not any(char in raw for char in CONTROLS), repr(raw)
    as_json = json.loads(raw)  # the data is whole, as JSON escapes
    assert HOSTILE in as_json["last_error"] and as_json["payload"] == {"text": "\x9b2J\x1b[2J"}
    assert as_json["headers"] == {"h": "\x9b2J"}


async def test_tables_are_whole_when_piped_at_80_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    queue_name, task_type = "customer-notifications.eu", "send_the_monthly_invoice_email"
    async with queuekit.connect(url) as queue:
        job = await queue.enqueue(task_type, queue=queue_name)

    def listing(*args: str) -> str:
        return ok(*args, url=url, env={"COLUMNS": "80"})

    rows = (await anyio.to_thread.run_sync(lambda: listing("jobs", "list"))).splitlines()
    header = ["id", "queue", "type", "status", "tries", "priority", "created", "due"]
    assert rows[0].split() == header
    assert rows[1].split()[:5] == [job.id, queue_name, task_type, "pending", "0/3"]
    stats = (await anyio.to_thread.run_sync(lambda: listing("stats"))).splitlines()
    assert stats[1].split()[:3] == [queue_name, "active", "1"]
    assert "…" not in "".join(rows + stats)


def test_a_table_fits_a_terminal_by_dropping_then_wrapping_columns() -> None:
    columns = ["id", "queue", "type", "status", "tries", "priority", "created", "due"]
    row = ["0190c3a4-5e6f-7000-8000-000000000001", "customer-notifications.eu"]
    row += ["send_the_monthly_invoice_email", "pending", "0/3", "10"]
    row += ["2030-01-01 09:00:00", "2030-01-01 09:00:00"]
    optional, wrap = ["due", "priority", "created"], ["queue", "type"]

    wide = table(columns, [row], width=None, optional=optional, wrap=wrap).splitlines()
    assert len(wide) == 2 and wide[1].split() == " ".join(row).split()  # piped: one line

    narrow = table(columns, [row], width=80, optional=optional, wrap=wrap).splitlines()
    assert all(len(line) <= 80 for line in narrow) and len(narrow) > 2
    assert narrow[0].split() == ["id", "queue", "type", "status", "tries"]
    starts = [narrow[0].index(name) for name in narrow[0].split()] + [80]
    cells = [
        "".join(line[start:end].strip() for line in narrow[1:])
        for start, end in itertools.pairwise(starts)
    ]
    assert cells == row[:5]  # the id on one line; queue and type wrapped, nothing cut off

"""Activity counts to and from the rows and JSON the SQL backends and Redis store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..activity import ActivityCounts, Minute
from .times import stored_time


def counts_json(counts: Sequence[ActivityCounts]) -> str:
    """`counts` as the JSON array the add statements take."""
    return json.dumps([count_fields(entry) for entry in counts], separators=(",", ":"))


def count_fields(entry: ActivityCounts) -> dict[str, Any]:
    """One queue's counts as the JSON object the statements and scripts read."""
    return {
        "queue": entry.queue,
        "enqueued": entry.enqueued,
        "completed": entry.completed,
        "failed": entry.failed,
        "dead": entry.dead,
        "wait": list(entry.wait),
        "run": list(entry.run),
    }


def minute_from_row(row: Any) -> Minute:
    """A stored minute: `minute` a datetime or epoch seconds, `wait`/`run` lists or JSON text,
    `depth` NULL where no sample was taken."""
    depth = row["depth"]
    return Minute(
        queue=row["queue"],
        at=stored_time(row["minute"]),
        enqueued=int(row["enqueued"]),
        completed=int(row["completed"]),
        failed=int(row["failed"]),
        dead=int(row["dead"]),
        wait=_buckets(row["wait"]),
        run=_buckets(row["run"]),
        depth=None if depth is None else int(depth),
    )


def _buckets(value: str | Sequence[int]) -> tuple[int, ...]:
    return tuple(int(n) for n in (json.loads(value) if isinstance(value, str) else value))

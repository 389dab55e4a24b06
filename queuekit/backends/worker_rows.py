"""`worker_from_row`: a stored row of the worker registry as a `WorkerRecord`."""

from __future__ import annotations

from ..backend import WorkerRecord
from .rows import Row
from .times import stored_time


def worker_from_row(row: Row) -> WorkerRecord:
    """The entry a row holds, by column: id, info, started_at, last_seen, draining."""
    return WorkerRecord(
        worker_id=str(row["id"]),
        info=str(row["info"]),
        started_at=stored_time(row["started_at"]),
        last_seen=stored_time(row["last_seen"]),
        draining=bool(int(row["draining"])),
    )

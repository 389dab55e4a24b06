"""An enqueue's unique and debounce keys on SQLite: the job holding one, let go or rewritten as
`Backend`'s "Unique keys" says, inside the enqueue's transaction (migration 16's indexes)."""

from __future__ import annotations

from collections.abc import Mapping

import aiosqlite

from ...job import Job, NewJob, OnConflict
from ..rows import job_from_row
from .callers import rows_by_name
from .queries import SQL


def key_params(new: NewJob) -> dict[str, object]:
    """The insert's key parameters (also those of the statements below)."""
    return {
        "unique_key": new.unique_key,
        "unique_states": ",".join(new.unique_states) or None,
        "unique_for": new.unique_for,
        "replace": int(new.on_conflict == OnConflict.REPLACE),
        "debounce_key": new.debounce_key,
        "debounce_max": new.debounce_max,
    }


async def holder(db: aiosqlite.Connection, new: NewJob, params: Mapping[str, object]) -> Job | None:
    """The job holding `new`'s key, as the request leaves it (given the request's payload and
    due time where its rules say so); None if no job holds it, which includes a finished holder
    whose hold was over: this write has let it go."""
    if new.debounce_key is not None:
        rows = await rows_by_name(db, SQL["take_debounced"], params)
        return job_from_row(rows[0]) if rows else None
    rows = await rows_by_name(db, SQL["take_unique"], params)
    if rows and rows[0]["released"]:
        return None
    # Left as it is (the statement changed nothing): read it.
    rows = rows or await rows_by_name(db, SQL["unique_holder"], params)
    return job_from_row(rows[0]) if rows else None

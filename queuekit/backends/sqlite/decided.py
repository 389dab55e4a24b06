"""Taking what the dependency triggers (migrations 15 and 16) decided, to announce it: and
first settling what they left to settle, in the same transaction."""

from __future__ import annotations

import json
import sqlite3

import aiosqlite

from ...events import EventKind
from .callers import rows_by_name
from .queries import SQL


async def take_decided(db: aiosqlite.Connection) -> list[sqlite3.Row]:
    """The decisions made since the last take, oldest first, inside the transaction `db` is in.

    What one statement cannot decide (queries.sql `settle`) is decided here, until nothing is
    left: the dependents of a TRIGGER dependent cancelled because its several unfinished
    parents ended together (marked `settle`), and the TRIGGER dependents of a job a replay
    brought back to waiting.
    """
    taken: list[sqlite3.Row] = []
    while True:
        rows = await rows_by_name(db, SQL["take_decided"], {})
        # Numbered by the table's rowid, which starts again once a take emptied it.
        taken.extend(sorted(rows, key=lambda row: int(row["n"])))
        ended = [row["job_id"] for row in rows if row["settle"]]
        returned = [row["job_id"] for row in rows if row["kind"] == EventKind.WAITING]
        if not ended and not returned:
            return taken
        if ended:
            await rows_by_name(db, SQL["settle"], {"ended": json.dumps(ended)})
        if returned:
            await rows_by_name(db, SQL["settle_returned"], {"returned": json.dumps(returned)})

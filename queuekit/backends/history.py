"""Attempt history as every backend stores it: a JSON array of a job's latest attempt records.

Each record is an object, oldest first: `attempt` (the number), `worker`, `started` and
`finished` (epoch seconds: a number, or decimal text on SQLite and Redis), `outcome`, and
`error` (absent or null when there is none). The statement or script that ends an attempt
appends its record in the same write, keeping the latest `HISTORY_LIMIT` and cutting the error
to `HISTORY_ERROR_CHARS` characters: the SQL backends through the `ended_attempt` fragment of
their queries.sql, Redis in `lua/_jobs.lua` (`end_attempt`), memory with `ended_attempt` here
(which keeps the objects, not their text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from ..job import HISTORY_ERROR_CHARS, HISTORY_LIMIT, AttemptOutcome, AttemptRecord, JobStatus
from .times import stored_time

ENDED_ATTEMPT = re.compile(r"\{ended_attempt\((.+?);(.+?)\)\}", re.DOTALL)
"""Where a statement takes the `ended_attempt` fragment: `{ended_attempt(<outcome>; <error>)}`,
two SQL expressions (neither holds a `;` or a `)}`)."""
BOUNDS = {"{history_limit}": str(HISTORY_LIMIT), "{history_error_chars}": str(HISTORY_ERROR_CHARS)}


def history_from_stored(
    stored: str | Iterable[Mapping[str, Any]] | None,
) -> tuple[AttemptRecord, ...]:
    """The records of a stored history: its JSON text, or the memory backend's list of the
    objects (None: no attempt has ended yet)."""
    if stored is None:
        return ()
    return tuple(
        AttemptRecord(
            number=int(record["attempt"]),
            worker_id=record["worker"],
            started_at=stored_time(record["started"]),
            finished_at=stored_time(record["finished"]),
            outcome=AttemptOutcome(record["outcome"]),
            error=record.get("error"),
        )
        for record in (json.loads(stored) if isinstance(stored, str) else stored)
    )


def with_ended_attempts(statements: dict[str, str]) -> None:
    """Fill in each `{ended_attempt(...)}` of `statements` with their `ended_attempt` fragment,
    which is removed from them, its bounds written in."""
    fragment = statements.pop("ended_attempt")
    for token, value in BOUNDS.items():
        fragment = fragment.replace(token, value)

    def fill(use: re.Match[str]) -> str:
        return fragment.replace("{outcome}", use[1].strip()).replace("{error}", use[2].strip())

    for name, body in statements.items():
        statements[name] = ENDED_ATTEMPT.sub(fill, body)


def lua_bounds() -> str:
    """The bounds as Lua, for the scripts' prelude (before the Lua library, which uses them)."""
    return f"local HISTORY_LIMIT, HISTORY_ERROR_CHARS = {HISTORY_LIMIT}, {HISTORY_ERROR_CHARS}\n"


def ended_attempt(
    record: MutableMapping[str, Any], status: JobStatus, error: str | None, now: float
) -> None:
    """Append the running attempt of a memory backend's job `record` to its history, as ending
    now and leaving the job in `status` (`pending`: snoozed); a job not running has none.

    The history is a list of the JSON objects, not their text (`history_from_stored` reads
    either): a job's end no longer parses and writes it again.
    """
    if record["status"] != JobStatus.RUNNING:
        return
    outcome = AttemptOutcome.SNOOZED if status == JobStatus.PENDING else AttemptOutcome(status)
    history: list[dict[str, Any]] = record["history"]
    history.append(
        {
            "attempt": record["attempts"],
            "worker": record["worker_id"],
            "started": record["started_at"],
            "finished": now,
            "outcome": str(outcome),
            "error": None if error is None else error[:HISTORY_ERROR_CHARS],
        }
    )
    del history[:-HISTORY_LIMIT]

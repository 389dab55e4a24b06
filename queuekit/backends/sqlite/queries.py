"""The SQLite statements of queries.sql (`{now}` and `{ended_attempt(...)}` filled in) and
migrations, for the backend."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from ..history import with_ended_attempts
from ..sqlfiles import load_queries

NOW = "((julianday('now') - 2440587.5) * 86400.0)"
"""SQLite's clock in epoch seconds (millisecond precision), for `{now}` in queries.sql."""
SQL = {name: sql.replace("{now}", NOW) for name, sql in load_queries("sqlite").items()}
with_ended_attempts(SQL)


def statements(script: str) -> list[str]:
    """Split a migration into statements (its comments may hold semicolons; its code does not,
    except inside a trigger's body, which SQLite's own parser tells to keep whole)."""
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    found: list[str] = []
    pending = ""
    for piece in code.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                found.append(pending.strip())
            pending = ""
    if pending.strip(" \n\t;"):
        found.append(pending.strip())
    return found


def equal_to(params: Mapping[str, Any], *columns: str, alias: str = "") -> str:
    """` AND <column> = :<column>` for each of `columns` whose parameter is not None."""
    return "".join(
        f" AND {alias}{column} = :{column}" for column in columns if params[column] is not None
    )

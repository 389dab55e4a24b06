"""Loading the SQL files that ship in each SQL backend's package (`<dialect>/sql/`), once."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def _sql_folder(dialect: str) -> Traversable:
    """The `sql` folder of the backend package named `dialect` (`postgres`, `sqlite`)."""
    return resources.files(f"{__package__}.{dialect}").joinpath("sql")


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """Read `<dialect>/sql/queries.sql` and split it at each `-- name: <name>` line."""
    text = _sql_folder(dialect).joinpath("queries.sql").read_text("utf-8")
    parts = _NAME.split(text)
    return {
        name: _without_comments(body) for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def _without_comments(sql: str) -> str:
    """Drop whole-line comments, which explain a statement to readers, not to the server."""
    return "\n".join(
        line for line in sql.strip().splitlines() if not line.lstrip().startswith("--")
    )


@cache
def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """The numbered files of `<dialect>/sql/migrations/`, as (version, script), in order."""
    folder = _sql_folder(dialect).joinpath("migrations")
    scripts = [
        (int(entry.name.split("_", 1)[0]), entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(scripts)

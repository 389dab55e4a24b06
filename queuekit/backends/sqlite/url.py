"""SQLite URLs: `sqlite:///relative.db`, `sqlite:////absolute/path.db`, `sqlite://:memory:`."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from ...errors import InvalidURLError
from ..url_options import lowered, read_url

URL_OPTIONS = {"synchronous": ("synchronous", lowered)}
"""`queuekit_synchronous=normal`: see `SQLiteBackend`. A SQLite URL takes no other option."""


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """The database path a SQLite URL names, and the backend's options it gives."""
    parts, options, rest = read_url(url, URL_OPTIONS, "SQLite")
    if rest:
        raise InvalidURLError(
            f"unknown option {rest[0][0]!r} in SQLite URL; queuekit knows queuekit_synchronous"
        )
    if parts.netloc == ":memory:":
        return ":memory:", options
    if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
        raise InvalidURLError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////abs/path.db"
        )
    return unquote(parts.path[1:]), options

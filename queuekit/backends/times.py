"""Stored times read back as aware UTC datetimes, the same way for every backend."""

from __future__ import annotations

from datetime import UTC, datetime


def stored_time(value: datetime | float | str) -> datetime:
    """A stored time: an aware datetime (asyncpg) or epoch seconds, maybe as decimal text
    (SQLite, Redis)."""
    return value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), UTC)


def optional_time(value: datetime | float | str | None) -> datetime | None:
    """`stored_time` of a time that may be missing (None)."""
    return None if value is None else stored_time(value)

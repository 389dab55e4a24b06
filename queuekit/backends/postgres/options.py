"""PostgreSQL URLs: the `queuekit_*` options `PostgresBackend` takes, the rest asyncpg's DSN."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ...errors import InvalidURLError
from ..url_options import Read, count, flag, lowered, number, read_url, text

SCHEMES = ("postgresql", "postgres")
URL_OPTIONS: dict[str, tuple[str, Read]] = {
    "schema": ("schema", text),
    "table": ("table", text),
    "pool_min": ("min_pool_size", count),
    "pool_max": ("max_pool_size", count),
    "poll_only": ("poll_only", flag),
    "migrate": ("migrate", flag),
    "notify_cooldown": ("notify_cooldown", number),
    "batch_window": ("batch_window", number),
    "batch_max": ("batch_max", count),
    "connect_timeout": ("connect_timeout", number),
    "statement_cache_size": ("statement_cache_size", count),
    "pgbouncer": ("pgbouncer", lowered),
    "listen_dsn": ("listen_dsn", text),
}
"""Each option's name in the URL (after `queuekit_`): its constructor keyword and reader."""


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """`postgresql://user:password@host:5432/db?queuekit_schema=jobs&...`: the DSN for asyncpg
    (the URL without the `queuekit_*` options) and the backend's options."""
    parts, options, rest = read_url(url, URL_OPTIONS, "PostgreSQL")
    if parts.scheme.lower() not in SCHEMES:
        raise InvalidURLError(
            f"not a PostgreSQL URL: {parts.scheme!r}; use postgresql://user@host:port/db"
        )
    if parts.fragment:
        raise InvalidURLError("a PostgreSQL URL takes no #fragment")
    return urlunsplit(parts._replace(query=urlencode(rest))), options


def describe(dsn: str) -> str:
    """Where a DSN points, for messages: host, port and database, never the password."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "the configured server"
    location = parts.netloc.rpartition("@")[2] or "localhost"
    return f"{location}{parts.path or ''}"

"""SQLite (aiosqlite): `SQLiteBackend`, the embedded, durable default, on one database file."""

from .backend import SQLiteBackend

__all__ = ["SQLiteBackend"]

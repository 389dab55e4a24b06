"""PostgreSQL (asyncpg): `PostgresBackend`, jobs in one table, claimed with SKIP LOCKED."""

from .backend import PostgresBackend

__all__ = ["PostgresBackend"]

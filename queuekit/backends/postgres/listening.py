"""`ListenConnections`: how a PostgreSQL backend gets and gives back a LISTEN connection."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import asyncpg.pool

from .connections import Connection, server_settings
from .table import PostgresTable


class ListenConnections(PostgresTable):
    """A direct connection to `listen_dsn` (or the pool's DSN), else one of the given pool's."""

    _dsn: str | None
    _listen_dsn: str | None
    _connect_timeout: float
    pgbouncer: str | None

    def _server_settings(self, dsn: str | None) -> dict[str, str]:
        """Session settings for connections to `dsn` (the pool's DSN maybe through PgBouncer)."""
        pooled = self.pgbouncer is not None and dsn == self._dsn
        return server_settings(dsn, through_pgbouncer=pooled)

    async def _listener_connect(self) -> Connection:
        dsn = self._listen_dsn or self._dsn
        if dsn is not None:
            return await asyncpg.connect(
                dsn, timeout=self._connect_timeout, server_settings=self._server_settings(dsn)
            )
        return await self._require_pool().acquire()

    async def _listener_release(self, conn: Connection) -> None:
        with contextlib.suppress(Exception):
            if isinstance(conn, asyncpg.pool.PoolConnectionProxy):
                if self._pool is not None:
                    await self._pool.release(conn, timeout=1)
            elif not conn.is_closed():
                async with asyncio.timeout(1):
                    await conn.close()
        if isinstance(conn, asyncpg.Connection) and not conn.is_closed():
            conn.terminate()

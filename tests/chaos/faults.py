"""Outages a test can switch on and off: a TCP proxy it cuts (PostgreSQL, Redis) and a write
lock another connection holds (SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urlsplit, urlunsplit

import anyio.to_thread


class Outage(Protocol):
    """A fault between clients and a store: `cut()` starts it, `restore()` ends it."""

    url: str
    """The URL clients use, through the fault."""

    async def cut(self) -> None: ...

    async def restore(self) -> None: ...


class TcpProxy:
    """A TCP proxy on a free loopback port to the server of `url`.

    `cut()` resets every connection through it and resets each new one at once, as a
    network partition or a server that went away would, until `restore()`.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None, url
        self._target = (parts.hostname, parts.port)
        self._parts = parts
        self._open = True
        self._connections: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.url = url

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        user = f"{self._parts.username}@" if self._parts.username else ""
        self.url = urlunsplit(self._parts._replace(netloc=f"{user}127.0.0.1:{port}"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        self._reset_all()
        await self._server.wait_closed()

    async def cut(self) -> None:
        self._open = False
        self._reset_all()

    async def restore(self) -> None:
        self._open = True

    def _reset_all(self) -> None:
        for writer in list(self._connections):
            writer.transport.abort()
        self._connections.clear()

    async def _serve(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        if not self._open:
            client.transport.abort()
            return
        try:
            server_reader, server = await asyncio.open_connection(*self._target)
        except OSError:
            client.transport.abort()
            return
        self._connections |= {client, server}
        await asyncio.gather(_pipe(client_reader, server), _pipe(server_reader, client))
        self._connections -= {client, server}


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side ends, then reset the other."""
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.transport.abort()


class SQLiteLock:
    """Another connection holding the write lock of a SQLite database (`BEGIN EXCLUSIVE`), as a
    long migration or backup would: writers wait out their busy timeout, then fail."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._path = urlsplit(url).path[1:]
        self._holder: sqlite3.Connection | None = None

    async def cut(self) -> None:
        def lock() -> sqlite3.Connection:
            holder = sqlite3.connect(self._path, timeout=60, check_same_thread=False)
            holder.isolation_level = None
            holder.execute("BEGIN EXCLUSIVE")
            return holder

        self._holder = await anyio.to_thread.run_sync(lock)

    async def restore(self) -> None:
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()

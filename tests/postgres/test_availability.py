"""PostgreSQL down or dropping connections: `BackendUnavailableError`, then recovery."""

from __future__ import annotations

import asyncio
import socket
import time

import asyncpg
import pytest

import queuekit
from queuekit import BackendUnavailableError
from queuekit.backends.postgres import PostgresBackend


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


async def test_a_server_that_is_down_is_reported_clearly() -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/test"
    started = time.monotonic()
    with pytest.raises(
        BackendUnavailableError, match=r"cannot connect to PostgreSQL at 127\.0\.0\.1"
    ):
        async with queuekit.connect(url):
            pass
    assert time.monotonic() - started < 5


async def test_a_closed_backend_refuses_calls(pg_backend: PostgresBackend) -> None:
    await pg_backend.close()
    with pytest.raises(BackendUnavailableError):
        await pg_backend.get_job("x")
    with pytest.raises(BackendUnavailableError):
        await pg_backend.enqueue(queuekit.new_job("t"))


async def test_killed_connections_surface_then_recover(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    job = await pg_backend.enqueue(queuekit.new_job("t"))
    pool = pg_backend._pool
    assert pool is not None
    # Hold every pool connection in a transaction so each call must use a dead one.
    held = [await pool.acquire() for _ in range(pool.get_size())]
    pids = [conn.get_server_pid() for conn in held]
    for conn in held:
        await pool.release(conn)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
    finally:
        await admin.close()
    outcomes: list[str] = []
    for _ in range(pool.get_max_size() + 2):
        try:
            found = await pg_backend.get_job(job.id)
        except BackendUnavailableError:
            outcomes.append("unavailable")
        else:
            assert found == job
            outcomes.append("ok")
    assert outcomes[-1] == "ok"  # the pool reconnected by itself
    assert set(outcomes) <= {"ok", "unavailable"}
    await asyncio.sleep(0)

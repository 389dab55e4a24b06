"""PostgreSQL pushes cancels over the backend's one LISTEN connection; when it is lost, the
waiters are woken once it is back (a cancel sent meanwhile was not heard), and pushed again."""

from __future__ import annotations

import anyio
import asyncpg

import queuekit
from queuekit.backends.postgres import PostgresBackend

from ..waiting import DEADLINE, eventually
from .conftest import OpenBackend

NEVER = 3600.0


async def _kill_listener(backend: PostgresBackend, dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN %' AND query LIKE $1",
            f"%{backend.channel}%",
        )
    finally:
        await conn.close()
    assert killed == 1


async def test_a_lost_listen_connection_wakes_the_holder_and_pushes_again(
    open_backend: OpenBackend, dsn: str
) -> None:
    backend = await open_backend()
    await backend.enqueue_many([queuekit.new_job("t"), queuekit.new_job("t")])
    held = await backend.claim({"default": 2}, limit=2, lease=NEVER, worker_id="w")
    await backend.wait_for_loss(held, 0.5)  # the LISTEN connection is up
    assert backend.listener_connections == 1
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as group:
            group.start_soon(backend.wait_for_loss, held, NEVER)
            await anyio.wait_all_tasks_blocked()
            await _kill_listener(backend, dsn)
    # Woken when the connection came back, long before NEVER.
    assert backend.listener_connections == 2
    woken = anyio.Event()

    async def wait() -> None:
        await backend.wait_for_loss(held, NEVER)
        woken.set()

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        await backend.cancel(held[0].id)
        await eventually(lambda: woken.is_set(), "the cancel was pushed on the new connection")
    lost = await backend.heartbeat([job.attempt for job in held], lease=30)
    assert lost == {held[0].attempt}

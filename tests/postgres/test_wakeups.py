"""PostgreSQL wake-ups: LISTEN/NOTIFY instead of polling, one listener per backend that comes
back by itself, debounced notifications, poll-only mode, and results woken by NOTIFY."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

import queuekit
from queuekit.backends.postgres import PostgresBackend

from .conftest import OpenBackend

MINUTE = 60.0
WOKEN = 30.0
"""A wake-up came (no poll waits less than MINUTE) even on a busy machine."""


async def _woken_after(backend: PostgresBackend, queues: list[str], timeout: float) -> float:
    started = time.monotonic()
    await backend.wait_for_work(queues, timeout)
    return time.monotonic() - started


@pytest.mark.parametrize("jobs", [1, 600])  # 600: a call stored by COPY
async def test_an_idle_waiter_wakes_on_an_enqueue_elsewhere(
    open_backend: OpenBackend, jobs: int
) -> None:
    waiter, producer = await open_backend(), await open_backend()
    waiting = asyncio.create_task(_woken_after(waiter, ["default", "other"], MINUTE))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    await producer.enqueue_many([queuekit.new_job("t", queue="other") for _ in range(jobs)])
    await asyncio.wait_for(waiting, WOKEN)
    assert waiter.listener_connections == 1


async def test_a_waiter_on_other_queues_keeps_sleeping(open_backend: OpenBackend) -> None:
    waiter, producer = await open_backend(), await open_backend()
    waiting = asyncio.create_task(_woken_after(waiter, ["quiet"], 1.0))
    await asyncio.sleep(0.3)
    await producer.enqueue(queuekit.new_job("t", queue="busy"))
    assert await waiting >= 0.95


async def test_waiters_share_one_listen_connection(open_backend: OpenBackend) -> None:
    waiter, producer = await open_backend(), await open_backend()
    waits = [asyncio.create_task(_woken_after(waiter, ["default"], MINUTE)) for _ in range(20)]
    await asyncio.sleep(0.5)
    await producer.enqueue(queuekit.new_job("t"))
    await asyncio.wait_for(asyncio.gather(*waits), WOKEN)
    assert waiter.listener_connections == 1


async def test_the_listener_comes_back_after_its_connection_dies(
    open_backend: OpenBackend, dsn: str
) -> None:
    waiter, producer = await open_backend(), await open_backend()
    await _woken_after(waiter, ["default"], 0.1)  # starts the listener
    assert waiter.listener_connections == 1
    conn = await asyncpg.connect(dsn)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN %' AND query LIKE $1",
            f"%{waiter.channel}%",
        )
    finally:
        await conn.close()
    assert killed == 1
    deadline = time.monotonic() + WOKEN
    while waiter.listener_connections < 2:
        assert time.monotonic() < deadline, "the listener did not reconnect"
        await asyncio.sleep(0.05)
    waiting = asyncio.create_task(_woken_after(waiter, ["default"], MINUTE))
    await asyncio.sleep(0.3)
    await producer.enqueue(queuekit.new_job("t"))
    await asyncio.wait_for(waiting, WOKEN)


async def test_enqueue_wake_ups_are_debounced_but_never_lost(
    open_backend: OpenBackend, dsn: str
) -> None:
    producer = await open_backend(notify_cooldown="0.2")
    heard: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        await conn.add_listener(producer.channel, lambda *args: heard.append(args[3]))
        started = time.monotonic()
        for _ in range(30):
            await producer.enqueue(queuekit.new_job("t"))
        took = time.monotonic() - started
        while heard.count("w:default") < 2:  # the trailing one, a cooldown after the burst
            assert time.monotonic() < started + WOKEN, heard
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # room for any wake-up too many to arrive
    finally:
        await conn.close()
    # The first at once, then at most one per cooldown, the last one trailing the burst.
    assert 2 <= heard.count("w:default") <= 2 + took / 0.2, heard


async def test_poll_only_mode_never_listens_and_still_finds_work(
    open_backend: OpenBackend,
) -> None:
    waiter = await open_backend(poll_only="true")
    producer = await open_backend()
    assert await _woken_after(waiter, ["default"], 0.3) >= 0.29
    await producer.enqueue(queuekit.new_job("t", delay=0.4))
    assert 0.3 < await _woken_after(waiter, ["default"], MINUTE) < WOKEN  # woken at the due time
    assert waiter.listener_connections == 0
    # In the same process, an enqueue still wakes a local waiter at once.
    waiting = asyncio.create_task(_woken_after(waiter, ["local"], MINUTE))
    await asyncio.sleep(0.1)
    await waiter.enqueue(queuekit.new_job("t", queue="local"))
    await asyncio.wait_for(waiting, WOKEN)


async def test_results_are_woken_by_notify(open_backend: OpenBackend) -> None:
    client, worker = await open_backend(), await open_backend()
    queue = queuekit.Queue(client)
    job = await queue.enqueue("t")
    result = asyncio.create_task(queue.result(job.id, timeout=MINUTE))
    await asyncio.sleep(0.5)
    running = (await worker.claim({"default": 1}, limit=1, lease=30, worker_id="w"))[0]
    finished_at = time.monotonic()
    assert await worker.complete(running.attempt, '"done"')
    assert await asyncio.wait_for(result, WOKEN) == "done"
    # Before the backstop re-check (5 s after the wait began): a notification woke it.
    assert time.monotonic() - finished_at < 3.0


async def test_a_retry_now_wakes_waiters(open_backend: OpenBackend) -> None:
    waiter, worker = await open_backend(), await open_backend()
    await worker.enqueue(queuekit.new_job("t"))
    running = (await worker.claim({"default": 1}, limit=1, lease=30, worker_id="w"))[0]
    waiting = asyncio.create_task(_woken_after(waiter, ["default"], MINUTE))
    await asyncio.sleep(0.5)
    assert await worker.fail(running.attempt, "boom", retry_in=0) == queuekit.JobStatus.FAILED
    await asyncio.wait_for(waiting, WOKEN)

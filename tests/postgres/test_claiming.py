"""PostgreSQL claims: one job to one claimer across connections and OS processes, claim order
against the reference backend, the claim index, the lookups by id of what an attempt writes,
the rescuer's index, and heartbeats as HOT updates."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from collections import Counter
from pathlib import Path

import queuekit
from queuekit import Job
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.postgres import PostgresBackend

from ..setups import BackendSetup
from .conftest import OpenBackend

REPO = Path(__file__).resolve().parents[2]

CLAIMER = """
import asyncio, json, sys
from queuekit.backends.postgres import PostgresBackend

async def main(url: str, name: str) -> None:
    backend = PostgresBackend.from_url(url)
    await backend.open()
    print("ready", flush=True)
    sys.stdin.readline()  # wait until every process is ready
    claimed = []
    try:
        while True:
            jobs = await backend.claim({"default": 5}, limit=5, lease=60, worker_id=name)
            if not jobs:
                break
            claimed += [job.id for job in jobs]
            done = await asyncio.gather(*(backend.complete(job.attempt) for job in jobs))
            assert all(done), done
    finally:
        await backend.close()
    print(json.dumps(claimed), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_claimers_in_many_processes_take_each_job_once(
    pg: BackendSetup, pg_backend: PostgresBackend
) -> None:
    total, processes = 1500, 4
    jobs = await pg_backend.enqueue_many([queuekit.new_job("t", {"n": n}) for n in range(total)])
    assert pg.url is not None
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLAIMER,
            pg.url,
            f"process-{n}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        for n in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert (await asyncio.wait_for(child.stdout.readline(), 30)).strip() == b"ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        outputs = await asyncio.wait_for(
            asyncio.gather(*(child.communicate() for child in children)), 60
        )
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
    assert all(child.returncode == 0 for child in children)
    per_process = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    claimed = Counter(job_id for ids in per_process for job_id in ids)
    assert set(claimed) == {job.id for job in jobs}
    assert max(claimed.values()) == 1, "a job was claimed twice"
    assert sum(1 for ids in per_process if ids) >= 2, "only one process got work: no contention"
    stats = await pg_backend.stats("default")
    assert stats.completed == total and stats.running == 0


async def test_many_connections_with_slots_and_priorities(open_backend: OpenBackend) -> None:
    first = await open_backend()
    requests = [
        queuekit.new_job("t", queue=random.choice("abc"), priority=random.choice([0, 10, 20, 30]))
        for _ in range(1200)
    ]
    await first.enqueue_many(requests)
    clients = [first] + [await open_backend() for _ in range(3)]
    seen: list[Job] = []

    async def claimer(client: PostgresBackend, name: str) -> None:
        while True:
            jobs = await client.claim({"a": 3, "b": 2, "c": 4}, limit=6, lease=60, worker_id=name)
            if not jobs:
                return
            counts = Counter(job.queue for job in jobs)
            assert counts["a"] <= 3 and counts["b"] <= 2 and counts["c"] <= 4
            seen.extend(jobs)

    await asyncio.gather(*(claimer(clients[n % 4], f"c{n}") for n in range(12)))
    assert len(seen) == len(requests)
    assert len({job.id for job in seen}) == len(requests)


async def test_claim_order_matches_the_reference_backend(pg_backend: PostgresBackend) -> None:
    """Random queues, priorities and delays; each claim takes what the memory backend takes."""
    rng = random.Random(7)
    reference = MemoryBackend()
    requests = [
        queuekit.new_job(
            "t",
            queue=rng.choice(["a", "b", "c"]),
            priority=rng.choice([0, 5, 10, 20, 1000]),
            delay=rng.choice([0, 0, 0, 3600]),
        )
        for _ in range(300)
    ]
    await pg_backend.enqueue_many(requests)
    await reference.enqueue_many(requests)
    while True:
        slots = {queue: rng.randint(0, 6) for queue in "abc"}
        limit = rng.randint(1, 12)
        expected = await reference.claim(slots, limit=limit, lease=60, worker_id="w")
        got = await pg_backend.claim(slots, limit=limit, lease=60, worker_id="w")
        assert [job.id for job in got] == [job.id for job in expected]
        if not expected and all(slots.values()):
            break
    assert (await pg_backend.stats("a")).scheduled == (await reference.stats("a")).scheduled


async def test_claim_reads_only_the_claim_index(pg_backend: PostgresBackend) -> None:
    await pg_backend.enqueue_many([queuekit.new_job("t") for _ in range(50)])
    pool = pg_backend._pool
    assert pool is not None
    async with pool.acquire() as conn:
        await conn.execute(f"ANALYZE {pg_backend.qualified_table}")
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("SET LOCAL enable_seqscan = off")  # a 50-row table: force realism
            plan = await conn.fetch(
                "EXPLAIN (COSTS OFF) " + pg_backend._sql["claim"],
                ["default"],
                [10],
                10,
                30.0,
                "w",
                "token",
            )
        finally:
            await transaction.rollback()
    text = "\n".join(row[0] for row in plan)
    scans = [line for line in text.splitlines() if "Scan using" in line]
    assert all(f"{pg_backend.table}_claim" in line or "_pkey" in line for line in scans), text
    assert "Sort Key: j" not in text  # never sorts the table's rows, only the chosen ones


async def test_an_attempt_s_writes_find_its_job_by_id(pg_backend: PostgresBackend) -> None:
    """A finish, a heartbeat and a completion in the caller's transaction look their jobs up
    by id, never by reading every running job from their index: with a fleet's jobs
    running, and the dead versions of those that ran since the last vacuum, that was most of
    each finish's work. The rescuer alone reads them all, from their index."""
    await pg_backend.enqueue_many([queuekit.new_job("t") for _ in range(300)])
    ran = await pg_backend.claim({"default": 100}, limit=100, lease=60, worker_id="w")
    for job in ran:
        await pg_backend.complete(job.attempt)
    running = await pg_backend.claim({"default": 20}, limit=20, lease=60, worker_id="w")
    ids = [job.id for job in running[:3]]
    tokens = [job.lease_token for job in running[:3]]
    statements = {
        "finish": (ids, tokens, ["complete"] * 3, ["1"] * 3, [None] * 3, [None] * 3, "c"),
        "heartbeat": (ids, tokens, 60.0, [None] * 3, [None] * 3, [None] * 3),
        "complete_in_transaction": (ids[0], tokens[0], "1", "c"),
    }
    pool = pg_backend._pool
    assert pool is not None
    async with pool.acquire() as conn:
        await conn.execute(f"ANALYZE {pg_backend.qualified_table}")
        for name, args in statements.items():
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_seqscan = off")  # a small table: realism
                plan = await conn.fetch("EXPLAIN (COSTS OFF) " + pg_backend._sql[name], *args)
            text = "\n".join(row[0] for row in plan)
            assert f"{pg_backend.table}_id_key" in text, (name, text)
            assert f"{pg_backend.table}_running" not in text, (name, text)
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = await conn.fetch("EXPLAIN (COSTS OFF) " + pg_backend._sql["rescue"], "c")
    # The rescuer, though, reads the running jobs from their index (never the whole table).
    text = "\n".join(row[0] for row in plan)
    assert f"{pg_backend.table}_running" in text, text


async def test_a_heartbeat_is_a_hot_update(pg_backend: PostgresBackend) -> None:
    """A heartbeat, its progress report too, changes no indexed column: PostgreSQL keeps the
    job's new version on its page and writes no index entry for it (migration 20)."""
    await pg_backend.enqueue_many([queuekit.new_job("t")])
    (job,) = await pg_backend.claim({"default": 1}, limit=1, lease=60, worker_id="w")
    pool = pg_backend._pool
    assert pool is not None
    async with pool.acquire() as conn, conn.transaction():
        held = await conn.fetch(
            pg_backend._sql["heartbeat"], [job.id], [job.lease_token], 60.0, [0.5], ["half"], [None]
        )
        hot = await conn.fetchval(
            "SELECT pg_stat_get_xact_tuples_hot_updated($1::regclass)", pg_backend.qualified_table
        )
    assert [row["id"] for row in held] == [job.id]
    assert hot == 1

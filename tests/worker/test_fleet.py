"""Many hosts: 20 worker processes on 1,000 queues share one PostgreSQL or one Redis.

Jobs come in waves, each enqueued while every worker idles: a wave's first 100 jobs hold the
fleet's 100 slots until all have started, which needs every worker woken (with a 60 s poll
interval, a missed wake-up fails the test by its deadline instead of passing slowly); then
the rest drain, and the workers must have shared them fairly. Every job runs exactly once.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

import queuekit
from queuekit import JobStatus, Queue

from ..postgres.cluster import THROWAWAY_SETTINGS, programs_found, running_cluster
from ..setups import SETUPS, BackendSetup, postgres_setup, skip_for_missing, with_url_options
from ..waiting import eventually
from .fleet_worker import QUEUES

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 20
CONCURRENCY = 5
SLOTS = WORKERS * CONCURRENCY
POOL_MAX = 3
"""Each PostgreSQL worker's pool: with its LISTEN connection, 20 workers hold at most 80
connections (the default pool of 10 would let a busy moment ask for 220)."""
PRIVATE_SERVER_SETTINGS = f"{THROWAWAY_SETTINGS} -c max_connections=150"
"""The fleet's own PostgreSQL: a stock server's 100 connections, less those of the tests
running beside this one, could refuse a worker one, which then misses a wave."""
POLL_INTERVAL = 60.0
"""Seconds: so long that a worker that misses a wake-up misses the deadline below."""
WAKE_DEADLINE = 30.0
"""Seconds for every slot of the fleet to fill once a wave is enqueued: half the poll interval
(and Redis's 60 s cap on one blocking pop), so a worker that missed its wake-up cannot make
it; several times what a machine with every core busy took."""
BLOCK = 250
WAVES = [QUEUES[start : start + BLOCK] for start in range(0, len(QUEUES), BLOCK)] + [
    [QUEUES[-1]] * SLOTS
]
"""The queue of each job of each wave. Four waves give one job to each of 250 queues in a row,
all 1,000 queues in all: 100 jobs are held and 150 drain, and a wake-up lost for queues past
some position loses a whole wave. The last puts 100 jobs in one queue, which must wake every
worker. (Each claim over 1,000 queues costs the server milliseconds, so more jobs would take
longer than this test may.)"""
FAIR_SHARE = 0.1
"""The least a worker may run of the jobs that drain, as a part of the mean: one starved
worker, or one taking everything, falls below it; workers given unequal CPU by a busy machine
do not (seen: 0.17 of the mean for one of 20 processes on two cores kept busy beside them)."""


class WorkerLog:
    """What one worker process has written so far, read on from where the last look stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.pid: int | None = None
        self.waiting = False
        """Whether its last word was "wait": idle, blocked until woken (or the poll interval)."""
        self.started: list[str] = []
        self.held: Counter[int] = Counter()
        """Per wave, the jobs it started before the gate opened."""
        self.free = 0
        """The jobs it started after their wave's gate opened."""
        self.ended: Counter[int] = Counter()

    def read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        whole = data[: data.rfind(b"\n") + 1]
        self.offset += len(whole)
        for line in whole.decode().splitlines():
            word, *rest = line.split()
            if word == "pid":
                self.pid = int(rest[0])
            elif word in ("wait", "woke"):
                self.waiting = word == "wait"
            elif word == "start":
                self.started.append(rest[0])
                if rest[2] == "held":
                    self.held[int(rest[1])] += 1
                else:
                    self.free += 1
            else:
                self.ended[int(rest[1])] += 1


class Fleet:
    """`WORKERS` worker processes forked by one launcher, each on every queue, and their logs."""

    def __init__(self, url: str, directory: Path) -> None:
        self.directory = directory
        self.logs = [WorkerLog(directory / f"worker-{n}.log") for n in range(WORKERS)]
        with (directory / "launcher.log").open("wb") as output:
            self.launcher = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.worker.fleet_worker",
                    url,
                    str(directory),
                    str(WORKERS),
                    str(CONCURRENCY),
                    str(POLL_INTERVAL),
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def read(self) -> list[WorkerLog]:
        for log in self.logs:
            log.read()
        return self.logs

    def all_waiting(self) -> bool:
        return all(log.waiting for log in self.read())

    def held(self, wave: int) -> int:
        return sum(log.held[wave] for log in self.read())

    def ended(self, wave: int) -> int:
        return sum(log.ended[wave] for log in self.read())

    def open_gate(self, wave: int) -> None:
        (self.directory / f"open-{wave}").touch()

    def summary(self) -> str:
        workers = "\n".join(
            f"worker {n} (pid {log.pid}): waiting={log.waiting} held={dict(log.held)} "
            f"free={log.free}"
            for n, log in enumerate(self.read())
        )
        output = (self.directory / "launcher.log").read_text(errors="replace")[-10_000:]
        return f"{workers}\nlauncher (exit {self.launcher.poll()}):\n{output}"

    def stop(self) -> int:
        """SIGTERM the launcher, which passes it on (each worker drains, then exits); its exit
        code. A launcher that does not end is killed, and so are its workers."""
        if self.launcher.poll() is None:
            self.launcher.send_signal(signal.SIGTERM)
        try:
            return self.launcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.launcher.kill()
            for log in self.read():
                if log.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(log.pid, signal.SIGKILL)
            return self.launcher.wait()


class Connections:
    """How many connections the fleet holds, sampled from the server by their client name."""

    def __init__(self, name: str, server: str, *, redis: bool) -> None:
        self.name = name
        self.server = server
        """The server's URL, without queuekit's options."""
        self.redis = redis
        self.now = 0
        self.most = 0
        self.taken = 0
        self.blocked = 0
        """Redis: how many are blocked in a pop, waiting for a wake-up."""

    def add(self, count: int, blocked: int = 0) -> None:
        self.now = count
        self.most = max(self.most, count)
        self.blocked = blocked
        self.taken += 1

    async def next_sample(self) -> int:
        taken = self.taken
        await eventually(lambda: self.taken > taken, "the connections counted")
        return self.now

    async def sample(self) -> None:
        """Count every 0.1 s, until cancelled."""
        await (self._sample_redis() if self.redis else self._sample_postgres())

    async def _sample_postgres(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.server)
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
        try:
            while True:
                self.add(await conn.fetchval(query, self.name))
                await anyio.sleep(0.1)
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close()

    async def _sample_redis(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.server)
        try:
            while True:
                ours = [e for e in await client.client_list() if e.get("name") == self.name]
                blocked = sum(e.get("cmd") == "blpop" and "b" in e.get("flags", "") for e in ours)
                self.add(len(ours), blocked)
                await anyio.sleep(0.1)
        finally:
            with anyio.CancelScope(shield=True):
                await client.aclose()


@pytest.fixture(params=["postgres", "redis"])
async def fleet_setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendSetup]:
    if request.param == "redis":
        async with SETUPS["redis"](tmp_path) as setup:
            yield setup
        return
    if not programs_found():
        skip_for_missing("initdb/pg_ctl")
    with running_cluster(PRIVATE_SERVER_SETTINGS) as cluster:
        async with postgres_setup(tmp_path, cluster.dsn) as setup:
            yield setup


async def run_wave(
    queue: Queue, fleet: Fleet, connections: Connections, wave: int
) -> tuple[list[str], float]:
    """Enqueue the wave's jobs while every worker idles; their ids, and the seconds until the
    fleet's slots were full."""

    async def idle() -> bool:
        """Every worker waits; on Redis, blocked in its pop (it first looks for due jobs, and
        would see the wave there). PostgreSQL's waiters register before they look."""
        if not fleet.all_waiting():
            return False
        await connections.next_sample()
        return connections.blocked == WORKERS or not connections.redis

    await eventually(idle, f"before wave {wave}, every worker waits for work")
    start = time.monotonic()
    jobs = await queue.enqueue_many(
        queuekit.new_job("wave_job", {"wave": wave}, queue=name) for name in WAVES[wave]
    )
    await eventually(
        lambda: fleet.held(wave) >= SLOTS,
        f"wave {wave}: all {SLOTS} slots filled, so every worker woke",
        timeout=WAKE_DEADLINE,
    )
    woken = time.monotonic() - start
    per_worker = [log.held[wave] for log in fleet.read()]
    assert per_worker == [CONCURRENCY] * WORKERS, per_worker
    fleet.open_gate(wave)
    await eventually(lambda: fleet.ended(wave) == len(jobs), f"wave {wave}: every job ran")
    return [job.id for job in jobs], woken


async def completed_ids(queue: Queue) -> list[str]:
    """The ids of every completed job, in all queues."""
    ids: list[str] = []
    cursor = None
    while True:
        page = await queue.list_jobs(status=JobStatus.COMPLETED, limit=1000, cursor=cursor)
        ids += [job.id for job in page.jobs]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


@pytest.mark.slow
async def test_twenty_workers_on_a_thousand_queues_wake_share_and_lose_nothing(
    fleet_setup: BackendSetup, tmp_path: Path
) -> None:
    assert fleet_setup.url is not None
    name = f"queuekit_fleet_{secrets.token_hex(4)}"
    postgres = fleet_setup.name == "postgres"
    options = {"application_name": name, "queuekit_pool_max": str(POOL_MAX)}
    url = with_url_options(fleet_setup.url, **(options if postgres else {"client_name": name}))
    connections = Connections(name, fleet_setup.url.split("?")[0], redis=not postgres)
    enqueued: list[str] = []
    wake_times: list[float] = []
    idle_connections = 0
    fleet = Fleet(url, tmp_path)
    exit_code: int | None = None
    try:
        async with queuekit.connect(fleet_setup.make()) as queue:
            async with anyio.create_task_group() as group:
                group.start_soon(connections.sample)
                await eventually(fleet.all_waiting, "every worker started and waits for work")
                for wave in range(len(WAVES)):
                    ids, woken = await run_wave(queue, fleet, connections, wave)
                    enqueued += ids
                    wake_times.append(round(woken, 2))
                await eventually(fleet.all_waiting, "after the last wave, every worker waits")
                # The second sample: the first may have been asked for before the workers idled.
                await connections.next_sample()
                idle_connections = await connections.next_sample()
                group.cancel_scope.cancel()
            # A worker writes its last completions as it stops: look once all have stopped.
            exit_code = fleet.stop()
            completed = await completed_ids(queue)
    finally:
        if exit_code is None:
            exit_code = fleet.stop()
        # Shown by pytest when the test fails, and with -s.
        print(
            f"{fleet_setup.name}: slots full {wake_times} s after each wave; connections "
            f"{connections.most} at most, {idle_connections} once idle; jobs drained per "
            f"worker: {sorted(log.free for log in fleet.read())}"
        )
        print(fleet.summary())

    logs = fleet.read()
    started = Counter(job_id for log in logs for job_id in log.started)
    assert sorted(started) == sorted(enqueued), "every job started"
    assert set(started.values()) == {1}, "and none twice"
    assert sorted(completed) == sorted(enqueued), "every job completed, and nothing else"
    shares = sorted(log.free for log in logs)
    assert shares[0] >= FAIR_SHARE * sum(shares) / WORKERS, f"an unfair share: {shares}"
    assert exit_code == 0, "every worker drained and exited 0"
    if postgres:
        assert connections.most <= WORKERS * (POOL_MAX + 1), "each worker kept to its pool"

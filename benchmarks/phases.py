"""The phases of a benchmark (enqueue, drain, latency), each run in processes of the row's venv."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import asyncpg
import redis.asyncio as aioredis

from . import probe, system
from .drive import WARM_UP_JOB
from .peers import Row, Servers

REPO = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.02
SESSIONS_GONE_SECONDS = 10.0
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*: ")
"""How a traceback's last line starts: `psycopg.errors.UndefinedTable: relation ...`."""


class PhaseError(Exception):
    """A phase could not finish; the results table shows its message in place of a figure."""


@dataclass(frozen=True, slots=True)
class Settings:
    """How big each phase is and how many times it runs."""

    drain_jobs: int
    single_jobs: int
    bulk_jobs: int
    latency_jobs: int
    repetitions: int
    stall_seconds: float
    drains: tuple[tuple[int, int], ...] = ((1, 10), (1, 100), (2, 10), (4, 10))
    """(worker processes, concurrency of each) for each drain phase."""
    shape: str = "io"
    """What every job does after its probe line (`probe.SHAPES`) in every phase."""
    other_shapes: tuple[str, ...] = ("noop", "cpu")
    """The shapes also drained at 1 process × 10 each, for the table by job shape."""
    grace_seconds: float = 0.5
    """How long workers keep running after the last job, so that late duplicates are counted."""
    spacing_ms: float = 10.0


FULL = Settings(
    drain_jobs=5_000,
    single_jobs=5_000,
    bulk_jobs=20_000,
    latency_jobs=200,
    repetitions=3,
    stall_seconds=60,
)
QUICK = Settings(
    drain_jobs=1_000,
    single_jobs=300,
    bulk_jobs=1_000,
    latency_jobs=30,
    repetitions=1,
    stall_seconds=20,
    drains=((1, 10),),
    other_shapes=(),
    grace_seconds=0.2,
)


@dataclass(frozen=True, slots=True)
class Accounting:
    """Jobs that ran more than once, and jobs that never ran, in one phase."""

    duplicates: int
    missing: int

    @classmethod
    def of(cls, tally: probe.Tally) -> Accounting:
        return cls(tally.duplicates, tally.missing)


@dataclass(frozen=True, slots=True)
class Drain:
    jobs_per_second: float
    worker_cpu_us: float
    """Worker processes' CPU time per job, in microseconds."""
    server_cpu_us: float | None
    """The database server's CPU time per job; None without a server."""
    server_ops: float | None
    """Server transactions (PostgreSQL) or commands, those of scripts included (Redis), per
    job, the job's own PING left out; None without a server."""
    wal_bytes: float | None
    """Bytes of write-ahead log PostgreSQL wrote per job; None on other servers."""
    busy_cores: float
    """How many of the machine's cores were busy during the drain, on average: whether it was
    bound by the CPU of workers and server together."""
    accounting: Accounting


@dataclass(frozen=True, slots=True)
class Latency:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    accounting: Accounting


class ProbeFile:
    """The probe file of one phase, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        self._offset = 0
        self._lines = 0

    def lines(self) -> int:
        """Jobs started so far, duplicates included."""
        try:
            with open(self.path, "rb") as file:
                file.seek(self._offset)
                chunk = file.read()
        except FileNotFoundError:
            return 0
        # Count only whole lines; a partial one is read again next time.
        whole = chunk.rfind(b"\n") + 1
        self._offset += whole
        self._lines += chunk.count(b"\n", 0, whole)
        return self._lines


SERVER_PROCESSES = {"postgres": "postgres", "redis": "redis-server"}


@dataclass(frozen=True, slots=True)
class ServerCounts:
    ops: int
    """Transactions (PostgreSQL) or commands (Redis)."""
    wal: int | None
    """Bytes of write-ahead log (PostgreSQL), a position or a difference of two."""


class ServerOpsMeter:
    """What the server says it did between `start` and `stop`: PostgreSQL's transactions in
    the run's database (each statement outside a transaction is one, and one round trip) and
    the bytes of write-ahead log it wrote, Redis's commands (a script's own commands count, as
    its work does)."""

    def __init__(self, servers: Servers, server: str) -> None:
        self.servers = servers
        self.server = server
        self._started = ServerCounts(0, None)

    async def _counts(self) -> ServerCounts:
        if self.server == "postgres":
            connection = await asyncpg.connect(self.servers.postgres_dsn)
            try:
                # A session's counts reach the view when it ends (or every second while busy):
                # `stop` is read once the workers' sessions are gone. The log position is the
                # whole server's: a benchmark server runs nothing else.
                row = await connection.fetchrow(
                    "SELECT xact_commit + xact_rollback AS ops,"
                    " (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint AS wal"
                    " FROM pg_stat_database WHERE datname = current_database()"
                )
            finally:
                await connection.close()
            assert row is not None
            return ServerCounts(row["ops"], row["wal"])
        client = aioredis.Redis.from_url(self.servers.redis_url)
        try:
            return ServerCounts(int((await client.info("stats"))["total_commands_processed"]), None)
        finally:
            await client.aclose()

    async def start(self) -> None:
        self._started = await self._counts()

    async def stop(self) -> ServerCounts:
        """The operations (and log bytes, on PostgreSQL) since `start`."""
        if self.server == "postgres":
            await self._sessions_gone()
        ended, started = await self._counts(), self._started
        wal = None if ended.wal is None or started.wal is None else ended.wal - started.wal
        return ServerCounts(ended.ops - started.ops, wal)

    async def _sessions_gone(self) -> None:
        connection = await asyncpg.connect(self.servers.postgres_dsn)
        try:
            # A killed worker's sessions end within moments (their sockets closed); the bound
            # only keeps a session some library left behind from stalling the run.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SESSIONS_GONE_SECONDS):
                    while True:
                        others = await connection.fetchval(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                        if not others:
                            return
                        await asyncio.sleep(POLL_SECONDS)
        finally:
            await connection.close()


class Bench:
    """Runs phases of one row at a time against servers it empties before each phase."""

    def __init__(
        self, servers: Servers, admin_dsn: str, venvs: Path, workdir: Path, settings: Settings
    ) -> None:
        self.servers = servers
        self.venvs = venvs
        self.admin_dsn = admin_dsn
        self.workdir = workdir
        self.settings = settings
        self.probe = workdir / "probe.txt"

    async def __aenter__(self) -> Self:
        """Create the run's PostgreSQL database, new; it is dropped when the run ends."""
        await self._administer(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        await self._administer(f'CREATE DATABASE "{self.database}"')
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._administer(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    @property
    def database(self) -> str:
        return self.servers.postgres_dsn.rsplit("/", 1)[1]

    async def _administer(self, statement: str) -> None:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(statement)
        finally:
            await admin.close()

    async def reset(self) -> None:
        """Give the next phase an empty database, Redis database and SQLite file."""
        # A new schema is much quicker than a new database; what the killed workers' sessions
        # still hold is let go first.
        connection = await asyncpg.connect(self.servers.postgres_dsn)
        try:
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            await connection.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
        finally:
            await connection.close()
        client = aioredis.Redis.from_url(self.servers.redis_url)
        try:
            await client.flushdb()
        finally:
            await client.aclose()
        for suffix in ("", "-wal", "-shm"):
            Path(self.servers.sqlite_path + suffix).unlink(missing_ok=True)

    def _command(self, row: Row, *args: object) -> list[str]:
        python = self.venvs / row.venv / "bin" / "python"
        if not python.exists():
            raise PhaseError(f"{python} is missing; run `make bench-venvs`")
        return [str(python), "-m", "benchmarks.drive", row.key, *map(str, args)]

    def _environment(self, shape: str | None = None) -> dict[str, str]:
        return {
            **os.environ,
            **self.servers.environment(),
            probe.PROBE_FILE_ENV: str(self.probe),
            probe.SHAPE_ENV: shape or self.settings.shape,
        }

    async def _step(self, row: Row, *args: object) -> str:
        """Run one step to its end and return what it printed."""
        process = await asyncio.create_subprocess_exec(
            *self._command(row, *args),
            cwd=REPO,
            env=self._environment(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise PhaseError(_last_line(err.decode(errors="replace")))
        return out.decode()

    async def _start_workers(
        self, row: Row, processes: int, *args: object, shape: str | None = None
    ) -> list[asyncio.subprocess.Process]:
        """Start `processes` workers and let them go together once all of them are ready: a
        drain's jobs are queued already, and the first process to start would otherwise have
        them to itself while the others still load their library."""
        readies = [self.workdir / f"ready-{index}" for index in range(processes)]
        workers = []
        for index, ready in enumerate(readies):
            ready.unlink(missing_ok=True)
            log = open(self.workdir / f"worker-{index}.log", "wb")  # noqa: SIM115 (the process owns it)
            with log:
                workers.append(
                    await asyncio.create_subprocess_exec(
                        *self._command(row, "work", *args, "--ready", ready),
                        cwd=REPO,
                        env=self._environment(shape),
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=log,
                    )
                )
        try:
            await self._wait_for(
                lambda: sum(ready.exists() for ready in readies),
                processes,
                workers,
                "workers ready",
            )
            for index, worker in enumerate(workers):
                assert worker.stdin is not None
                try:
                    worker.stdin.write(b"go\n")
                    await worker.stdin.drain()
                except ConnectionError as exc:  # it died once ready
                    raise PhaseError(self._worker_error(index)) from exc
        except BaseException:
            await self._stop(workers)
            raise
        return workers

    def _worker_error(self, index: int) -> str:
        log = (self.workdir / f"worker-{index}.log").read_text(errors="replace")
        return f"worker exited: {_last_line(log)}"

    async def _wait_for(
        self,
        counter: Callable[[], int],
        target: int,
        workers: Sequence[asyncio.subprocess.Process],
        what: str = "jobs",
    ) -> None:
        """Wait until `counter` (jobs started, say) reaches `target`; fail when its progress
        stalls or a worker dies."""
        seen, progressed_at = -1, time.monotonic()
        while (count := counter()) < target:
            now = time.monotonic()
            if count != seen:
                seen, progressed_at = count, now
            elif now - progressed_at > self.settings.stall_seconds:
                raise PhaseError(f"stalled after {count} of {target} {what}")
            for index, worker in enumerate(workers):
                if worker.returncode is not None:
                    raise PhaseError(self._worker_error(index))
            await asyncio.sleep(POLL_SECONDS)

    async def _stop(self, workers: Sequence[asyncio.subprocess.Process]) -> None:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
            await worker.wait()

    async def enqueue(self, row: Row, how: str, count: int) -> float | None:
        """Jobs per second enqueued `how` ("single" or "bulk"); None if there is no bulk API."""
        await self.reset()
        printed = await self._step(row, "enqueue", "--how", how, "--count", count)
        seconds: float | None = json.loads(printed)["seconds"]
        return None if seconds is None else count / seconds

    async def drain(self, row: Row, concurrency: int, processes: int, shape: str) -> Drain:
        """Throughput of `processes` workers through a queue already holding the jobs, each
        job of `shape`."""
        jobs = self.settings.drain_jobs
        await self.reset()
        probe_file = ProbeFile(self.probe)
        if row.single_process:
            preload: list[object] = ["--count", jobs]
        else:
            await self._step(row, "enqueue", "--how", "fill", "--count", jobs)
            preload = []
        workers = await self._start_workers(
            row, processes, "--concurrency", concurrency, *preload, shape=shape
        )
        ops = ServerOpsMeter(self.servers, row.server)
        try:
            await self._wait_for(probe_file.lines, 1, workers)
            meter = system.CPUMeter([w.pid for w in workers], SERVER_PROCESSES.get(row.server))
            meter.start()
            if row.server in SERVER_PROCESSES:
                await ops.start()
            await self._wait_for(probe_file.lines, jobs, workers)
            used = meter.stop()
            await asyncio.sleep(self.settings.grace_seconds)
        finally:
            await self._stop(workers)
        asked = await ops.stop() if row.server in SERVER_PROCESSES else None
        pings = jobs if row.server == "redis" and shape == "io" else 0
        wal = None if asked is None or asked.wal is None else asked.wal / jobs
        tally = probe.tally(str(self.probe), jobs)
        return Drain(
            jobs_per_second=jobs / tally.span_seconds,
            worker_cpu_us=used.workers / jobs * 1e6,
            server_cpu_us=None if used.server is None else used.server / jobs * 1e6,
            server_ops=None if asked is None else (asked.ops - pings) / jobs,
            wal_bytes=wal,
            busy_cores=used.busy_cores,
            accounting=Accounting.of(tally),
        )

    async def latency(self, row: Row) -> Latency:
        """Enqueue-to-start latency with an idle worker (concurrency 10), jobs spaced apart."""
        jobs, spacing = self.settings.latency_jobs, self.settings.spacing_ms
        await self.reset()
        probe_file = ProbeFile(self.probe)
        enqueued_at = self.workdir / "enqueued.json"
        enqueued_at.unlink(missing_ok=True)
        spaced = ["--spacing-ms", spacing, "--out", enqueued_at]
        if row.single_process:
            workers = await self._start_workers(row, 1, "--latency", jobs, *spaced)
        else:
            # The warm-up job goes first, so that the library's tables exist before its worker
            # starts (some create them on first use, and two processes at once collide).
            await self._step(row, "enqueue", "--first", WARM_UP_JOB, "--count", 1)
            workers = await self._start_workers(row, 1, "--concurrency", 10)
        try:
            if not row.single_process:
                await self._wait_for(probe_file.lines, 1, workers)
                await self._step(row, "latency", "--count", jobs, *spaced)
            # The jobs, the enqueuer's untimed first one, and the worker's warm-up.
            await self._wait_for(probe_file.lines, jobs + 1 + (not row.single_process), workers)
            await asyncio.sleep(self.settings.grace_seconds)
        finally:
            await self._stop(workers)
        tally = probe.tally(str(self.probe), jobs)
        enqueued_ns = {int(n): t for n, t in json.loads(enqueued_at.read_text()).items()}
        latencies = sorted((t - enqueued_ns[n]) / 1e6 for n, t in tally.started_ns.items())
        percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
        return Latency(
            p50_ms=statistics.median(latencies),
            p95_ms=percentiles[94],
            p99_ms=percentiles[98],
            accounting=Accounting.of(tally),
        )


async def body_cpu_us(shape: str, jobs: int, concurrency: int = 10) -> float:
    """CPU time per job of the job body alone (`probe.work`), `concurrency` at a time in this
    process: the part of a worker's CPU per job that is the job's, not the library's. Its
    PINGs go to the Redis of `probe.REDIS_ENV`."""
    began = time.process_time()
    for _ in range(jobs // concurrency):
        await asyncio.gather(*(probe.work(shape) for _ in range(concurrency)))
    return (time.process_time() - began) / jobs * 1e6


async def redis_benchmark(url: str, requests: int) -> dict[str, float]:
    """Requests/s of `redis-benchmark` for single commands: 10 clients, no pipelining."""
    executable = shutil.which("redis-benchmark")
    if executable is None:
        raise PhaseError("redis-benchmark is not installed (Debian package redis-tools)")
    client = aioredis.Redis.from_url(url)
    try:
        kwargs = client.connection_pool.connection_kwargs
        host, port = str(kwargs.get("host", "127.0.0.1")), str(kwargs.get("port", 6379))
    finally:
        await client.aclose()
    process = await asyncio.create_subprocess_exec(
        executable,
        *("-h", host, "-p", port, "-n", str(requests), "-c", "10", "--csv"),
        *("-t", "ping,set,get,lpush,lpop,zadd,zpopmin"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise PhaseError(_last_line(err.decode(errors="replace")))
    rates = {}
    for line in out.decode().splitlines()[1:]:
        cells = [cell.strip('"') for cell in line.split(",")]
        rates[cells[0]] = float(cells[1])
    return rates


def _last_line(text: str) -> str:
    """The gist of a failed process's output: its exception line, else its last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    exceptions = [line for line in lines if EXCEPTION_LINE.match(line)]
    gist = exceptions[-1] if exceptions else lines[-1] if lines else "no output"
    return gist[:300]

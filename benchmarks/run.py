"""`make bench`: queuekit and its peers on the same servers, in one run, with a results table.

    .bench/queuekit/bin/python -m benchmarks.run [--quick] [--rows queuekit-redis,arq ...]

Every measure is repeated and reported as its median; repetitions are interleaved across rows,
so that a slow minute of the machine does not fall on one library only. A phase that fails
leaves its message in the table instead of a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import report, system
from .peers import ROWS, ROWS_BY_KEY, Row, Servers
from .peers.base import REDIS_ENV
from .phases import (
    FULL,
    QUICK,
    REPO,
    Accounting,
    Bench,
    PhaseError,
    Settings,
    body_cpu_us,
    redis_benchmark,
)

RESULTS = Path(__file__).resolve().parent / "results"
BODY_JOBS = 5_000
"""How many job bodies are timed alone, per shape."""


@dataclass
class RowResult:
    """Every repetition's figures for one row, and what went wrong."""

    row: Row
    figures: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    accounting: dict[str, Accounting] = field(default_factory=dict)

    def add(self, measure: str, value: float | None) -> None:
        if value is not None:
            self.figures.setdefault(measure, []).append(value)

    def count(self, phase: str, accounting: Accounting) -> None:
        seen = self.accounting.get(phase, Accounting(0, 0))
        self.accounting[phase] = Accounting(
            seen.duplicates + accounting.duplicates, seen.missing + accounting.missing
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.row.key,
            "library": self.row.library,
            "server": self.row.server,
            "setting": self.row.setting,
            "reference": self.row.reference,
            "medians": {name: statistics.median(values) for name, values in self.figures.items()},
            "repetitions": self.figures,
            "errors": self.errors,
            "accounting": {
                phase: {"duplicates": a.duplicates, "missing": a.missing}
                for phase, a in self.accounting.items()
            },
        }


Phase = Callable[[Bench, RowResult], Awaitable[None]]


def enqueue_phase(how: str) -> Phase:
    async def measure(bench: Bench, result: RowResult) -> None:
        count = bench.settings.single_jobs if how == "single" else bench.settings.bulk_jobs
        rate = await bench.enqueue(result.row, how, count)
        if rate is None:
            result.errors[f"enqueue_{how}"] = "no bulk API"
        result.add(f"enqueue_{how}", rate)

    return measure


def drain_phase(concurrency: int, processes: int, shape: str | None = None) -> Phase:
    """A drain of the run's job shape, or (`shape`) of another at 1 × 10, named for it."""
    suffix = f"_{shape}" if shape else ""
    name = f"drain_{processes}x{concurrency}{suffix}"

    async def measure(bench: Bench, result: RowResult) -> None:
        drain = await bench.drain(result.row, concurrency, processes, shape or bench.settings.shape)
        result.add(name, drain.jobs_per_second)
        result.add(f"busy_cores_{processes}x{concurrency}{suffix}", drain.busy_cores)
        if (processes, concurrency) == (1, 10):
            result.add(f"worker_cpu_us{suffix}", drain.worker_cpu_us)
            result.add(f"server_cpu_us{suffix}", drain.server_cpu_us)
            result.add(f"server_ops{suffix}", drain.server_ops)
            result.add(f"wal_bytes{suffix}", drain.wal_bytes)
        result.count(name, drain.accounting)

    return measure


async def latency_phase(bench: Bench, result: RowResult) -> None:
    latency = await bench.latency(result.row)
    result.add("latency_p50", latency.p50_ms)
    result.add("latency_p95", latency.p95_ms)
    result.add("latency_p99", latency.p99_ms)
    result.count("latency", latency.accounting)


def phases_of(row: Row, settings: Settings) -> dict[str, Phase]:
    """What is measured of a row; a reference claim loop is measured draining only."""
    drains = {
        f"drain_{processes}x{concurrency}": drain_phase(concurrency, processes)
        for processes, concurrency in settings.drains
        # One process holds an in-memory queue: a second worker process could not share it.
        if not (row.single_process and processes > 1)
        # A bare claim loop opens a connection per unit of concurrency.
        and not (row.reference and concurrency > 10)
    }
    drains |= {f"drain_1x10_{shape}": drain_phase(10, 1, shape) for shape in settings.other_shapes}
    if row.reference:
        return drains
    return {
        "enqueue_single": enqueue_phase("single"),
        "enqueue_bulk": enqueue_phase("bulk"),
        **drains,
        "latency": latency_phase,
    }


async def server_versions(servers: Servers) -> dict[str, str]:
    connection = await asyncpg.connect(servers.postgres_dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        postgres = await connection.fetchval("SHOW server_version")
        synchronous_commit = await connection.fetchval("SHOW synchronous_commit")
    finally:
        await connection.close()
    client = aioredis.Redis.from_url(servers.redis_url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return {
        "postgres": f"PostgreSQL {postgres} (synchronous_commit={synchronous_commit})",
        "redis": f"Redis {info['redis_version']}",
    }


def commit() -> str:
    out = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "unknown"


async def run(args: argparse.Namespace) -> None:
    settings: Settings = QUICK if args.quick else FULL
    rows = [ROWS_BY_KEY[key] for key in args.rows.split(",")] if args.rows else ROWS
    servers = Servers(
        postgres_dsn=f"{args.postgres.rstrip('/')}/queuekit_bench",
        redis_url=args.redis,
        sqlite_path=str(Path(tempfile.gettempdir()) / "queuekit_bench.db"),
    )
    results = {row.key: RowResult(row) for row in rows}
    plan = [
        (repetition, row, name, phase)
        for repetition in range(settings.repetitions)
        for row in rows
        for name, phase in phases_of(row, settings).items()
    ]
    began = time.monotonic()
    started_at = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="queuekit-bench-") as workdir:
        admin_dsn = f"{args.postgres.rstrip('/')}/postgres"
        async with Bench(servers, admin_dsn, REPO / ".bench", Path(workdir), settings) as bench:
            with Progress(
                TextColumn("{task.description:<44}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            ) as progress:
                task = progress.add_task("references", total=len(plan) + 1)
                references: dict[str, object]
                try:
                    references = {"redis-benchmark": await redis_benchmark(args.redis, 100_000)}
                except PhaseError as error:
                    references = {"redis-benchmark": {"error": str(error)}}
                # The job bodies alone, here: their PINGs go where the workers' go.
                os.environ[REDIS_ENV] = servers.redis_url
                references["job body CPU (µs/job)"] = {
                    shape: await body_cpu_us(shape, BODY_JOBS)
                    for shape in (settings.shape, *settings.other_shapes)
                }
                progress.advance(task)
                for repetition, row, name, phase in plan:
                    progress.update(
                        task,
                        description=f"{repetition + 1}/{settings.repetitions} {row.key} {name}",
                    )
                    try:
                        await phase(bench, results[row.key])
                    except PhaseError as error:
                        results[row.key].errors[name] = str(error)
                    progress.advance(task)
    document = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - began),
        "commit": commit(),
        "quick": args.quick,
        "settings": asdict(settings),
        "machine": system.describe(),
        "servers": await server_versions(servers),
        "versions": report.pinned_versions(),
        "references": references,
        "rows": [result.as_dict() for result in results.values()],
    }
    # Only a full run of every row is the latest: the others must not overwrite its results.
    name = "quick" if args.quick else "rows" if args.rows else "latest"
    written = report.write(document, RESULTS, name, update_readme=name == "latest")
    for path in written:
        print(f"wrote {path}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small phases, one repetition")
    parser.add_argument("--rows", default="", help=f"comma-separated, of {', '.join(ROWS_BY_KEY)}")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(run(parse()))

"""The benchmark harness, run small against real servers: phases finish and count every job.

No figure is checked against a speed; these tests check that a run measures what it says.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from benchmarks import probe, report
from benchmarks.peers import ROWS_BY_KEY, Servers
from benchmarks.peers.base import REDIS_ENV
from benchmarks.phases import Accounting, Bench, PhaseError, Settings, body_cpu_us
from benchmarks.run import RowResult, phases_of
from benchmarks.system import free_ports

from ..redis.server import RedisServer, private_redis, running
from ..setups import require_postgres_dsn

TINY = Settings(
    drain_jobs=300,
    single_jobs=50,
    bulk_jobs=300,
    latency_jobs=20,
    repetitions=1,
    stall_seconds=20,
    grace_seconds=0.2,
)


def with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path, query=""))


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    dsn = require_postgres_dsn()
    # The harness flushes its Redis database before each phase: a private server, not the
    # shared one.
    (port,) = free_ports(1)
    redis = RedisServer(tmp_path / "redis", port)
    servers = Servers(
        postgres_dsn=with_path(dsn, f"/queuekit_bench_{secrets.token_hex(4)}"),
        redis_url=redis.url,
        sqlite_path=str(tmp_path / "bench.db"),
    )
    # The test runs the rows' steps with this interpreter, which has queuekit installed.
    venvs = tmp_path / "venvs"
    venvs.mkdir()
    (venvs / "queuekit").symlink_to(sys.prefix)
    workdir = tmp_path / "work"
    workdir.mkdir()
    with running(redis):
        async with Bench(servers, with_path(dsn, "/postgres"), venvs, workdir, TINY) as bench:
            yield bench


@pytest.mark.parametrize(
    "key", ["queuekit-memory", "queuekit-sqlite", "queuekit-sqlite-normal", "queuekit-postgres"]
)
async def test_every_phase_of_a_row_runs_each_job_once(bench: Bench, key: str) -> None:
    result = RowResult(ROWS_BY_KEY[key])
    for phase in phases_of(result.row, TINY).values():
        await phase(bench, result)

    assert result.errors == {}
    measured = set(result.figures)
    assert {"enqueue_single", "enqueue_bulk", "drain_1x10", "drain_1x100"} <= measured
    assert {"latency_p50", "latency_p95", "latency_p99", "worker_cpu_us"} <= measured
    assert {"drain_1x10_noop", "drain_1x10_cpu", "worker_cpu_us_noop", "worker_cpu_us_cpu"} <= (
        measured
    )
    drains = {name for name in measured if name.startswith("drain_")}
    assert {name.replace("drain_", "busy_cores_", 1) for name in drains} <= measured
    # CPU is counted in clock ticks (10 ms): a tiny phase may round to none.
    cpu = {name for name in measured if "cpu_us" in name or name.startswith("busy_cores")}
    assert all(value >= 0 for name in cpu for value in result.figures[name])
    assert all(value > 0 for name in measured - cpu for value in result.figures[name])
    # A job of 1 ms of CPU costs its worker at least that.
    assert min(result.figures["worker_cpu_us_cpu"]) >= 1000 * 0.9
    assert ("drain_2x10" in measured) == ("drain_4x10" in measured) == (key != "queuekit-memory")
    assert ("server_cpu_us" in measured) == (key == "queuekit-postgres")
    assert (
        ("server_ops" in measured)
        == ("server_ops_noop" in measured)
        == (key == "queuekit-postgres")
    )
    assert (
        ("wal_bytes" in measured) == ("wal_bytes_cpu" in measured) == (key == "queuekit-postgres")
    )
    assert set(result.accounting.values()) == {Accounting(0, 0)}


async def test_a_drains_workers_start_together_once_all_are_ready(bench: Bench) -> None:
    """The second process loads its library while the first waits: no job starts before the
    last worker is ready (each ready file holds the clock when it was made)."""
    await bench.drain(ROWS_BY_KEY["queuekit-sqlite"], 10, 2, "noop")

    ready_ns = [int((bench.workdir / f"ready-{index}").read_text()) for index in range(2)]
    started_ns = probe.tally(str(bench.probe), TINY.drain_jobs).started_ns.values()
    assert len(started_ns) == TINY.drain_jobs
    assert min(started_ns) > max(ready_ns)


async def test_a_failing_phase_says_why(bench: Bench) -> None:
    (bench.venvs / "queuekit").unlink()
    with pytest.raises(PhaseError, match="make bench-venvs"):
        await bench.drain(ROWS_BY_KEY["queuekit-sqlite"], 10, 1, "noop")


async def test_each_job_shape_records_then_does_its_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a redis-server of the test's own: its count of PINGs is then the probe's alone."""
    with private_redis() as url:
        monkeypatch.setenv(REDIS_ENV, url)
        monkeypatch.setenv(probe.PROBE_FILE_ENV, str(tmp_path / "probe.txt"))
        monkeypatch.setattr(probe, "_fd", None)
        client = Redis.from_url(url)

        async def pings() -> int:
            stats = await client.info("commandstats")
            return int(stats.get("cmdstat_ping", {}).get("calls", 0))

        try:
            before = await pings()  # the server's start was awaited with one
            monkeypatch.setenv(probe.SHAPE_ENV, "io")
            await asyncio.gather(*(probe.job(n) for n in range(10)))
            await asyncio.gather(*(asyncio.to_thread(probe.job_sync, n) for n in range(10, 14)))
            assert await pings() - before == 14
            monkeypatch.setenv(probe.SHAPE_ENV, "cpu")
            began = time.thread_time()
            await probe.job(14)
            assert time.thread_time() - began >= probe.CPU_SECONDS
            monkeypatch.setenv(probe.SHAPE_ENV, "noop")
            await probe.job(15)
            assert probe.tally(str(tmp_path / "probe.txt"), 16).missing == 0
            assert await body_cpu_us("cpu", 20) >= 1000
        finally:
            await client.aclose()


def test_the_tally_counts_duplicates_and_missing_jobs(tmp_path: Path) -> None:
    path = tmp_path / "probe.txt"
    path.write_bytes(b"0 100\n1 200\n1 250\n3 400\n1000000000 500\n")
    tally = probe.tally(str(path), 4)
    assert tally.started_ns == {0: 100, 1: 200, 3: 400}
    assert (tally.duplicates, tally.missing) == (1, 1)
    assert tally.span_seconds == pytest.approx(300e-9)


def test_the_report_shows_failures_and_judges_targets(tmp_path: Path) -> None:
    def row(key: str, library: str, server: str, medians: dict[str, float]) -> dict[str, object]:
        return {
            "key": key,
            "library": library,
            "server": server,
            "reference": False,
            "medians": medians,
            "repetitions": {},
            "errors": {} if medians else {"drain_1x10": "stalled after 5 of 20000 jobs"},
            "accounting": {"drain_1x10": {"duplicates": 0, "missing": 0}},
        }

    document = {
        "started_at": "2026-11-23T12:00:00+00:00",
        "seconds": 120,
        "commit": "abc",
        "quick": True,
        "settings": asdict(TINY),
        "machine": {"cpu": "cpu", "memory": "1 GiB", "os": "Linux", "python": "3.11"},
        "servers": {"postgres": "PostgreSQL 15", "redis": "Redis 7"},
        "versions": {"arq": "0.28.0"},
        "references": {
            "redis-benchmark": {"SET": 50000.0},
            "job body CPU (µs/job)": {"io": 20.0, "cpu": 1001.0},
        },
        "rows": [
            row(
                "queuekit-redis",
                "queuekit",
                "redis",
                {"drain_1x10": 3000.0, "latency_p99": 4.0, "worker_cpu_us": 90.0},
            ),
            row("arq", "arq", "redis", {"drain_1x10": 1000.0, "worker_cpu_us": 80.0}),
            row(
                "queuekit-memory",
                "queuekit",
                "memory",
                {"worker_cpu_us": 45.0, "worker_cpu_us_cpu": 1045.0},
            ),
            row("saq-redis", "saq", "redis", {}),
        ],
    }
    text = report.markdown(document, "chart.png")
    assert "| saq (redis) |" in text and "✗ stalled after 5 of 20000 jobs" in text
    assert "SET 50,000" in text
    judged = {target: met for target, _, met in report.targets(document)}
    assert judged == {
        "redis drain_1x10: ≥ 3× the fastest peer": True,
        "redis p99 latency under 10 ms": True,
        "redis worker CPU per job below every peer's": False,
        "engine's own cost (memory backend), io jobs: ≤ 30 µs/job": True,
        "engine's own cost (memory backend), cpu jobs: ≤ 30 µs/job": False,
        "exactly once in every phase": True,
    }
    assert "By job shape, 1 process × 10" in text and "| 1,045 |" in text
    report.chart(document, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 0

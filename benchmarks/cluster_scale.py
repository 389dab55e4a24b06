"""Redis Cluster scaling: enqueue and drain throughput on one primary against three, one run.

    .venv/bin/python -m benchmarks.cluster_scale [--single 10000] [--bulk 50000]
        [--drain 20000] [--queues 12] [--processes 2] [--tasks 32] [--workers 2]
        [--concurrency 20]

Two private Redis Clusters are started (`redis-server --cluster-enabled yes` on free loopback
ports, stopped by PID at the end): one primary holding every slot (CLUSTER ADDSLOTSRANGE
0 16383) and three primaries (`redis-cli --cluster create`). On each, in turn, with jobs
spread round-robin over `--queues` queues (as many on each of the three primaries) and a
prefix per phase:

- enqueue 1 by 1: `--processes` processes, each with `--tasks` concurrent tasks awaiting one
  enqueue after another, `--single` jobs in all;
- bulk enqueue: `--processes` processes enqueuing `--bulk` jobs in calls of 500;
- drain: `--drain` jobs enqueued first, then `--workers` worker processes (each `--concurrency`
  slots over every queue) run them all; each job awaits one Redis round trip (a PING).

Every phase's processes connect first and say so; the clock runs from the moment all are
told to go until the last has exited. The table gives jobs per second and the ratio of three
primaries to one. (On a machine with few cores, the clients and servers share them: three
primaries cannot be three times one.) A second table gives the CPU time per job of the
busiest primary (from /proc, so Linux only): what bounds a phase once a node is saturated,
and less disturbed than wall time by whatever else the machine runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
from redis.asyncio import Redis
from redis.crc import key_slot

import queuekit

from .ping_job import pinging, tasks
from .system import cpu_seconds, free_ports

REPO = Path(__file__).resolve().parent.parent
BULK_CALL = 500
"""Jobs per `enqueue_many` call in the bulk phase (and when the drain's jobs are queued)."""
SIZES = (1, 3)
"""Primaries of the two clusters compared."""


@dataclass(frozen=True, slots=True)
class Settings:
    """How much each phase does, and by how many processes and tasks."""

    single: int = 10_000
    bulk: int = 50_000
    drain: int = 20_000
    queues: int = 12
    processes: int = 2
    tasks: int = 32
    workers: int = 2
    concurrency: int = 20


class BenchmarkError(Exception):
    """A cluster or a phase's process failed."""


class Cluster:
    """A private Redis Cluster of `size` primaries and no replicas."""

    def __init__(self, size: int, directory: Path) -> None:
        self.size = size
        self.directory = directory
        self.ports = free_ports(size)
        self.processes: list[subprocess.Popen[bytes]] = []

    def url(self, prefix: str) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0?queuekit_cluster=true&queuekit_prefix={prefix}"

    def _cli(self, port: int, *command: str) -> str:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise BenchmarkError("redis-cli not found")
        done = subprocess.run(
            [cli, "-p", str(port), *command], capture_output=True, text=True, timeout=30
        )
        return done.stdout

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise BenchmarkError("redis-server not found")
        for port in self.ports:
            data = self.directory / str(port)
            data.mkdir(parents=True)
            command = [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
            command += ["--save", "", "--appendonly", "no", "--cluster-enabled", "yes"]
            command += ["--logfile", str(data / "redis.log")]
            self.processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL))
        self._until(lambda: all(self._cli(p, "PING").strip() == "PONG" for p in self.ports))
        if self.size == 1:
            self._cli(self.ports[0], "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        else:
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            self._cli(self.ports[0], "--cluster", "create", *nodes, "--cluster-yes")
        self._until(
            lambda: all("cluster_state:ok" in self._cli(p, "CLUSTER", "INFO") for p in self.ports)
        )

    def _until(self, condition: object, timeout: float = 30.0) -> None:
        assert callable(condition)
        deadline = time.monotonic() + timeout
        while not condition():
            if any(process.poll() is not None for process in self.processes):
                raise BenchmarkError(f"a redis-server of the cluster exited ({self.directory})")
            if time.monotonic() > deadline:
                raise BenchmarkError(f"the {self.size}-primary cluster did not come up")
            time.sleep(0.05)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def queue_names(prefix: str, count: int) -> list[str]:
    """`count` queue names that fall evenly on three primaries (each holding a third of the
    slots, as `redis-cli --cluster create` splits them): random names could put half the
    queues on one node, and the comparison would measure that luck."""
    per_node = [0] * SIZES[-1]
    names: list[str] = []
    n = 0
    while len(names) < count:
        name = f"q{n}"
        node = key_slot(f"{prefix}:{name}".encode()) * len(per_node) // 16384
        if per_node[node] < -(-count // len(per_node)):
            per_node[node] += 1
            names.append(name)
        n += 1
    return names


def shares(total: int, parts: int) -> list[int]:
    """`total` split in `parts` nearly equal shares."""
    return [total // parts + (n < total % parts) for n in range(parts)]


class Phase:
    """The processes of one phase: started early (importing takes a while, and overlaps the
    clusters' start), then told to connect, and once all have, to go."""

    def __init__(self, role: str, url: str, counts: list[int], settings: Settings, ping: int):
        self.role = role
        self.url = url
        self.prefix = url.rsplit("queuekit_prefix=", 1)[1]
        self.counts = counts
        self.settings = settings
        self.ping = ping
        self.children: list[asyncio.subprocess.Process] = []

    async def spawn(self) -> None:
        options = {
            "--url": self.url,
            "--queues": self.settings.queues,
            "--tasks": self.settings.tasks,
            "--concurrency": self.settings.concurrency,
            "--ping": self.ping,
        }
        arguments = [str(part) for pair in options.items() for part in pair]
        for count in self.counts:
            self.children.append(
                await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "benchmarks.cluster_scale", "--child", self.role),
                    *(*arguments, "--count", str(count)),
                    cwd=REPO,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )

    async def _tell(self, line: bytes) -> None:
        for child in self.children:
            assert child.stdin is not None
            child.stdin.write(line)
            await child.stdin.drain()

    async def run(self) -> float:
        """Seconds from telling every process to go until the last one exits."""
        await self._tell(b"connect\n")
        for child in self.children:
            assert child.stdout is not None
            if (await child.stdout.readline()).strip() != b"ready":
                raise BenchmarkError(f"a {self.role} process did not start")
        began = time.perf_counter()
        await self._tell(b"go\n")
        codes = [await child.wait() for child in self.children]
        elapsed = time.perf_counter() - began
        if any(codes):
            raise BenchmarkError(f"a {self.role} process failed (exit codes {codes})")
        return elapsed

    async def stop(self) -> None:
        for child in self.children:
            if child.returncode is None:
                child.kill()
                await child.wait()


async def completed(url: str, names: list[str]) -> int:
    async with queuekit.connect(url) as queue:
        return sum([(await queue.stats(name)).completed for name in names])


async def prefill(url: str, jobs: int, names: list[str]) -> None:
    async with queuekit.connect(url) as queue:
        for start in range(0, jobs, BULK_CALL):
            await queue.enqueue_many(
                queuekit.new_job("call", queue=names[n % len(names)])
                for n in range(start, min(jobs, start + BULK_CALL))
            )


@dataclass(frozen=True, slots=True)
class Figures:
    """Jobs per second of each phase on one cluster, and the busiest primary's CPU µs per job."""

    single: float
    bulk: float
    drain: float
    single_cpu: float
    bulk_cpu: float
    drain_cpu: float


def phases(cluster: Cluster, settings: Settings) -> list[Phase]:
    """Enqueue 1 by 1, bulk enqueue, drain: each on a prefix of its own, the same in every
    run (so the queues and index shards sit on the same nodes in every run)."""
    ping = cluster.ports[0]
    producers = settings.processes
    return [
        Phase("one", cluster.url("bench_one"), shares(settings.single, producers), settings, ping),
        Phase("bulk", cluster.url("bench_bulk"), shares(settings.bulk, producers), settings, ping),
        Phase("work", cluster.url("bench_drain"), [0] * settings.workers, settings, ping),
    ]


async def measure_cluster(cluster: Cluster, planned: list[Phase], settings: Settings) -> Figures:
    one, bulk, work = planned
    names = queue_names(work.prefix, settings.queues)

    async def timed(phase: Phase, jobs: int) -> tuple[float, float]:
        """Jobs per second, and the busiest primary's CPU µs per job."""
        before = [cpu_seconds(server.pid) for server in cluster.processes]
        seconds = await phase.run()
        after = [cpu_seconds(server.pid) for server in cluster.processes]
        busiest = max(b - a for a, b in zip(before, after, strict=True))
        return jobs / seconds, busiest * 1e6 / jobs

    single, single_cpu = await timed(one, settings.single)
    bulk_rate, bulk_cpu = await timed(bulk, settings.bulk)
    await prefill(work.url, settings.drain, names)
    drain, drain_cpu = await timed(work, settings.drain)
    done = await completed(work.url, names)
    if done != settings.drain:
        raise BenchmarkError(f"{done} of {settings.drain} jobs completed")
    return Figures(single, bulk_rate, drain, single_cpu, bulk_cpu, drain_cpu)


async def measure(settings: Settings) -> dict[int, Figures]:
    """Each phase on a cluster of each size in `SIZES`, one cluster at a time. The clusters
    start together (a new primary takes two seconds to accept writes), while every phase's
    processes start."""
    with tempfile.TemporaryDirectory(prefix="cluster_scale_") as directory:
        clusters = [Cluster(size, Path(directory) / f"primaries_{size}") for size in SIZES]
        planned = {cluster.size: phases(cluster, settings) for cluster in clusters}
        try:
            async with anyio.create_task_group() as group:
                for cluster in clusters:
                    group.start_soon(anyio.to_thread.run_sync, cluster.start)
                for phase in (phase for each in planned.values() for phase in each):
                    group.start_soon(phase.spawn)
            return {
                cluster.size: await measure_cluster(cluster, planned[cluster.size], settings)
                for cluster in clusters
            }
        finally:
            for phase in (phase for each in planned.values() for phase in each):
                await phase.stop()
            for cluster in clusters:
                cluster.stop()


def report(results: dict[int, Figures], settings: Settings) -> str:
    one, three = results[SIZES[0]], results[SIZES[1]]
    rows = [
        (
            f"enqueue 1 by 1 ({settings.processes} processes × {settings.tasks} tasks)",
            "single",
        ),
        (f"bulk enqueue ({settings.processes} processes, calls of {BULK_CALL})", "bulk"),
        (
            f"drain ({settings.workers} workers × {settings.concurrency}, a PING per job)",
            "drain",
        ),
    ]
    lines = [
        f"{settings.queues} queues; jobs per second",
        "",
        "| phase | 1 primary | 3 primaries | 3 / 1 |",
        "|---|---:|---:|---:|",
    ]
    for label, name in rows:
        a, b = getattr(one, name), getattr(three, name)
        lines.append(f"| {label} | {a:,.0f} | {b:,.0f} | {b / a:.2f}× |")
    lines += [
        "",
        "CPU time of the busiest primary, µs per job (what bounds a phase once it is saturated)",
        "",
        "| phase | 1 primary | 3 primaries | 1 / 3 |",
        "|---|---:|---:|---:|",
    ]
    for label, name in rows:
        a, b = getattr(one, f"{name}_cpu"), getattr(three, f"{name}_cpu")
        ratio = f"{a / b:.2f}×" if b else "-"
        lines.append(f"| {label.split(' (')[0]} | {a:,.1f} | {b:,.1f} | {ratio} |")
    return "\n".join(lines)


async def child(
    role: str, url: str, count: int, names: list[str], args: argparse.Namespace
) -> None:
    """One process of a phase: wait for `connect`, connect, say `ready`, wait for `go`, do
    its share."""
    if not await anyio.to_thread.run_sync(sys.stdin.readline):
        return  # the run ended before this phase
    async with pinging(Redis(host="127.0.0.1", port=args.ping)), queuekit.connect(url) as queue:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        if role == "one":

            async def producer(share: int, offset: int) -> None:
                for n in range(share):
                    await queue.enqueue("call", queue=names[(offset + n) % len(names)])

            async with anyio.create_task_group() as group:
                for offset, share in enumerate(shares(count, args.tasks)):
                    group.start_soon(producer, share, offset)
        elif role == "bulk":
            for start in range(0, count, BULK_CALL):
                await queue.enqueue_many(
                    queuekit.new_job("call", queue=names[n % len(names)])
                    for n in range(start, min(count, start + BULK_CALL))
                )
        else:
            worker = queuekit.Worker(queue, tasks, queues=names, concurrency=args.concurrency)
            await worker.run_until_empty()


def main() -> None:
    defaults = Settings()
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--single", type=int, default=defaults.single)
    parser.add_argument("--bulk", type=int, default=defaults.bulk)
    parser.add_argument("--drain", type=int, default=defaults.drain)
    parser.add_argument("--queues", type=int, default=defaults.queues)
    parser.add_argument("--processes", type=int, default=defaults.processes)
    parser.add_argument("--tasks", type=int, default=defaults.tasks)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    # A phase's own processes (Phase.spawn):
    parser.add_argument("--child", choices=("one", "bulk", "work"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--ping", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        prefix = args.url.rsplit("queuekit_prefix=", 1)[1]
        anyio.run(child, args.child, args.url, args.count, queue_names(prefix, args.queues), args)
        return
    settings = Settings(
        args.single,
        args.bulk,
        args.drain,
        args.queues,
        args.processes,
        args.tasks,
        args.workers,
        args.concurrency,
    )
    print(report(anyio.run(measure, settings), settings))


if __name__ == "__main__":
    main()

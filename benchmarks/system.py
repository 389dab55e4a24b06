"""The machine: what it is, the CPU it and its processes used (/proc, Linux only), free ports."""

from __future__ import annotations

import os
import platform
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far; 0 once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # The command name, in parentheses, may hold spaces: count fields after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def machine_cpu_seconds() -> float:
    """CPU time every core of the machine spent busy so far (idle and I/O wait left out)."""
    # The first line of /proc/stat sums the cores: user nice system idle iowait irq softirq
    # steal, in ticks.
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND


def pids_named(name: str) -> list[int]:
    """Every process whose command name is `name` (e.g. `postgres`, `redis-server`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return pids


@dataclass(frozen=True, slots=True)
class CPUUsed:
    workers: float
    """Seconds of CPU the worker processes used."""
    server: float | None
    """Seconds of CPU the database server used; None without one."""
    busy_cores: float
    """The machine's busy CPU time over the wall time: how many of its cores were in use."""


class CPUMeter:
    """CPU time used by a set of processes, and by the whole machine, between `start` and
    `stop`."""

    def __init__(self, pids: Sequence[int], server_process: str | None) -> None:
        self.pids = list(pids)
        self.server_process = server_process
        self._workers = 0.0
        self._server: dict[int, float] = {}
        self._machine = 0.0
        self._started_at = 0.0

    def _server_now(self) -> dict[int, float]:
        if self.server_process is None:
            return {}
        return {pid: cpu_seconds(pid) for pid in pids_named(self.server_process)}

    def start(self) -> None:
        self._workers = sum(cpu_seconds(pid) for pid in self.pids)
        self._server = self._server_now()
        self._machine = machine_cpu_seconds()
        self._started_at = time.monotonic()

    def stop(self) -> CPUUsed:
        busy_cores = (machine_cpu_seconds() - self._machine) / (time.monotonic() - self._started_at)
        workers = sum(cpu_seconds(pid) for pid in self.pids) - self._workers
        if self.server_process is None:
            return CPUUsed(workers, None, busy_cores)
        # A server process that started after `start` counts from zero.
        server = sum(cpu - self._server.get(pid, 0.0) for pid, cpu in self._server_now().items())
        return CPUUsed(workers, server, busy_cores)


def describe() -> dict[str, str]:
    """The machine in a few words, for the results' header."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
            break
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{memory_kib / 1024 / 1024:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def free_ports(count: int) -> list[int]:
    """Loopback ports nothing listens on now, nor on port + 10000 (a Cluster node's bus)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 10000 < 65536 and port not in ports and _port_free(port + 10000):
            ports.append(port)
    return ports


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

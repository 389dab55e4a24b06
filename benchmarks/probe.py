"""The probe every benchmarked job runs: one line, its number and start time, appended to a file,
then the run's job shape: nothing, one network round trip, or a millisecond of CPU.

Every library's job does exactly this and nothing else, so a run counts which jobs ran and how
often instead of trusting each library's own bookkeeping. `os.write` on an O_APPEND descriptor
is one unbuffered syscall, atomic for lines this short, so several worker processes can share
one file and a killed worker loses nothing it recorded.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from .peers.base import REDIS_ENV

PROBE_FILE_ENV = "QUEUEKIT_BENCH_PROBE"
SHAPE_ENV = "QUEUEKIT_BENCH_SHAPE"
SHAPES = ("noop", "io", "cpu")
"""What a job does after its record: nothing; await one Redis PING (as a real job awaits a
database or an API); spend `CPU_SECONDS` of CPU."""
CPU_SECONDS = 0.001
PING = b"PING\r\n"
PONG = b"+PONG\r\n"
_fd: int | None = None
_idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
_local = threading.local()


def record(n: int) -> None:
    """Append `n` and the monotonic clock (shared by every process on the machine)."""
    global _fd
    if _fd is None:
        _fd = os.open(os.environ[PROBE_FILE_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%d %d\n" % (n, time.monotonic_ns()))


def shape() -> str:
    """This process's job shape (`SHAPE_ENV`, "noop" when unset)."""
    chosen = os.environ.get(SHAPE_ENV, "noop")
    if chosen not in SHAPES:
        raise ValueError(f"{SHAPE_ENV}={chosen!r}: the shapes are {', '.join(SHAPES)}")
    return chosen


async def job(n: int) -> None:
    """The body of a benchmarked job, for libraries whose jobs are coroutines."""
    record(n)
    await work(shape())


async def work(of_shape: str) -> None:
    """What a job of `of_shape` does after its record."""
    match of_shape:
        case "io":
            await _ping()
        case "cpu":
            _spin()


def job_sync(n: int) -> None:
    """The body of a benchmarked job, for libraries that run jobs in threads."""
    record(n)
    match shape():
        case "io":
            _ping_sync()
        case "cpu":
            _spin()


def _spin() -> None:
    """Spend `CPU_SECONDS` of this thread's CPU time (not wall time, which a busy machine
    stretches)."""
    end = time.thread_time() + CPU_SECONDS
    while time.thread_time() < end:
        pass


def _redis_address() -> tuple[str, int]:
    url = urlsplit(os.environ[REDIS_ENV])
    return url.hostname or "127.0.0.1", url.port or 6379


async def _ping() -> None:
    """One PING on a connection of this process's own, as plain RESP: every venv can send it,
    whatever Redis client it holds or lacks. Connections are reused, one per job at a time."""
    connection = _idle.pop() if _idle else await asyncio.open_connection(*_redis_address())
    reader, writer = connection
    writer.write(PING)
    if await reader.readexactly(len(PONG)) != PONG:
        raise RuntimeError("Redis did not answer PING with PONG")
    _idle.append(connection)


def _ping_sync() -> None:
    """`_ping` for a job in a thread: one connection per thread."""
    connection: socket.socket | None = getattr(_local, "connection", None)
    if connection is None:
        connection = socket.create_connection(_redis_address())
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _local.connection = connection
    connection.sendall(PING)
    answer = b""
    while len(answer) < len(PONG):
        answer += connection.recv(len(PONG) - len(answer))
    if answer != PONG:
        raise RuntimeError("Redis did not answer PING with PONG")


@dataclass(frozen=True, slots=True)
class Tally:
    """What a probe file says about jobs numbered `0..expected-1`."""

    started_ns: dict[int, int]
    """The first start of each job that ran."""
    duplicates: int
    missing: int

    @property
    def span_seconds(self) -> float:
        """From the first job's start to the last one's."""
        if len(self.started_ns) < 2:
            return 0.0
        return (max(self.started_ns.values()) - min(self.started_ns.values())) / 1e9


def tally(path: str, expected: int) -> Tally:
    """Count runs per job in the probe file at `path`; numbers outside the range are ignored."""
    runs: Counter[int] = Counter()
    started_ns: dict[int, int] = {}
    try:
        with open(path, "rb") as file:
            for line in file:
                n_text, _, t_text = line.partition(b" ")
                n = int(n_text)
                if 0 <= n < expected:
                    runs[n] += 1
                    started_ns.setdefault(n, int(t_text))
    except FileNotFoundError:
        pass
    duplicates = sum(count - 1 for count in runs.values())
    return Tally(started_ns, duplicates, expected - len(started_ns))

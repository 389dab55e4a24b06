"""What each benchmarked library provides: a way to enqueue probe jobs, and a worker."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

POSTGRES_ENV = "QUEUEKIT_BENCH_POSTGRES"
REDIS_ENV = "QUEUEKIT_BENCH_REDIS"
SQLITE_ENV = "QUEUEKIT_BENCH_SQLITE"


@dataclass(frozen=True, slots=True)
class Servers:
    """Where a library under benchmark keeps its jobs; the runner empties them between phases."""

    postgres_dsn: str
    """A database of its own, created empty for each phase."""
    redis_url: str
    """A database number of its own, flushed for each phase."""
    sqlite_path: str
    """A file removed before each phase."""

    @classmethod
    def from_environment(cls) -> Servers:
        return cls(os.environ[POSTGRES_ENV], os.environ[REDIS_ENV], os.environ[SQLITE_ENV])

    def environment(self) -> dict[str, str]:
        return {
            POSTGRES_ENV: self.postgres_dsn,
            REDIS_ENV: self.redis_url,
            SQLITE_ENV: self.sqlite_path,
        }


class Peer(ABC):
    """One library on one server. Its jobs take one int, `n`, and run `probe.job(n)` only
    (`probe.job_sync(n)` where the library runs jobs in threads).

    Each method runs in a process of its own (the runner starts one per step), so `open`
    connects and `close` disconnects; nothing is shared between calls but the server.
    """

    has_bulk_enqueue = False
    """Whether the library has an API that enqueues many jobs in one call."""

    def __init__(self, servers: Servers) -> None:
        self.servers = servers

    async def open(self) -> None:  # noqa: B027 (optional: not every library connects)
        """Connect, and create the library's tables or keys if it needs them."""

    async def close(self) -> None:  # noqa: B027
        """Disconnect."""

    @abstractmethod
    async def enqueue(self, n: int) -> None:
        """Enqueue one job with argument `n`, the way an application enqueues one job."""

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        """Enqueue one job per number with the library's bulk API (when `has_bulk_enqueue`)."""
        raise NotImplementedError

    @abstractmethod
    async def work(self, concurrency: int) -> None:
        """Run a worker with `concurrency` jobs at a time until the process is killed."""

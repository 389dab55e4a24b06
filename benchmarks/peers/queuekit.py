"""queuekit on each of its four backends."""

from __future__ import annotations

from collections.abc import Sequence

import queuekit
from queuekit import Tasks, Worker

from .. import probe
from .base import Peer

tasks = Tasks()


@tasks.task()
async def probe_job(n: int) -> None:
    await probe.job(n)


class Queuekit(Peer):
    has_bulk_enqueue = True

    def url(self) -> str:
        raise NotImplementedError

    async def open(self) -> None:
        self.queue = queuekit.connect(self.url())
        await self.queue.open()

    async def close(self) -> None:
        await self.queue.close()

    async def enqueue(self, n: int) -> None:
        await probe_job.enqueue(self.queue, n)

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        await self.queue.enqueue_many(queuekit.new_job("probe_job", n) for n in ns)

    async def work(self, concurrency: int) -> None:
        await Worker(self.queue, tasks, concurrency=concurrency).run()


class Memory(Queuekit):
    def url(self) -> str:
        return "memory://"


class SQLite(Queuekit):
    """The default: `synchronous=FULL`, every commit on disk before it returns."""

    def url(self) -> str:
        return f"sqlite:///{self.servers.sqlite_path}"


class SQLiteNormal(Queuekit):
    """`synchronous=NORMAL`: commits reach the disk at checkpoints (safe from a crash of the
    process, not of the machine)."""

    def url(self) -> str:
        return f"sqlite:///{self.servers.sqlite_path}?queuekit_synchronous=normal"


class Postgres(Queuekit):
    def url(self) -> str:
        return self.servers.postgres_dsn


class Redis(Queuekit):
    def url(self) -> str:
        return self.servers.redis_url

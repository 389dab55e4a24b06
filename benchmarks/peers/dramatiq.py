"""Dramatiq on Redis: `send` per job (Dramatiq has no bulk enqueue), its `Worker` in-process.

Dramatiq is synchronous: `enqueue` calls `send` on the event loop's thread, as an application
without an async API would, and `work` starts the worker's threads in this process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from .. import probe
from .base import Peer

IDLE_POLL_MS = 10
"""The longest sleep between two fetches of an idle worker (`worker_timeout`; 1000 by default)."""


def probe_job(n: int) -> None:
    probe.job_sync(n)


class Dramatiq(Peer):
    async def open(self) -> None:
        # The default middleware: no Results middleware, so nothing is stored. The Redis broker
        # moves a fetched message to a per-worker set until it is acknowledged (after the job);
        # a worker whose heartbeat stops (60 s) has its messages put back: at-least-once.
        self.broker = RedisBroker(url=self.servers.redis_url)
        self.actor: Any = dramatiq.actor(probe_job, actor_name="probe", broker=self.broker)

    async def close(self) -> None:
        self.broker.close()

    async def enqueue(self, n: int) -> None:
        self.actor.send(n)

    async def work(self, concurrency: int) -> None:
        # The Redis consumer polls (a Lua fetch), backing off from 5 ms up to worker_timeout
        # while the queue is empty; 1 s by default, 10 ms here, as arq's poll_delay.
        worker = dramatiq.Worker(
            self.broker, worker_threads=concurrency, worker_timeout=IDLE_POLL_MS
        )
        worker.start()
        # The worker runs in its own threads until the process is killed.
        await asyncio.Event().wait()

"""Celery on Redis: `delay` per job (Celery has no bulk enqueue), its worker in-process.

Celery is synchronous: `enqueue` calls `delay` on the event loop's thread, as an application
without an async API would, and `work` runs `celery worker` in this process until it is killed.
This module is `benchmarks.peers.celery`; imports are absolute, so `import celery` below is the
library, not this file.
"""

from __future__ import annotations

import os
from typing import Any

import celery

from .. import probe
from .base import Peer


def probe_job(n: int) -> None:
    probe.job_sync(n)


class Celery(Peer):
    async def open(self) -> None:
        # No result backend (the default), and results ignored besides: nothing is stored.
        self.app = celery.Celery("bench", broker=self.servers.redis_url)
        self.app.conf.task_ignore_result = True
        # Keeps Celery 5's behaviour without the deprecation warning Celery prints otherwise.
        self.app.conf.broker_connection_retry_on_startup = True
        # acks_late: the message is acknowledged after the job ran, not when the worker takes
        # it (the default), so a killed worker's jobs go back to the queue instead of being
        # lost. That is what a team that cannot lose jobs sets. On Redis a job left
        # unacknowledged comes back after the broker's visibility_timeout (1 hour by default).
        self.task: Any = self.app.task(name="probe", acks_late=True)(probe_job)

    async def close(self) -> None:
        self.app.close()

    async def enqueue(self, n: int) -> None:
        self.task.delay(n)

    async def work(self, concurrency: int) -> None:
        # What `celery -A … worker --pool threads --concurrency N` runs. Redis is read with
        # BRPOP: no polling. It blocks this (the only) thread until the process is killed.
        # A node name per process, so two workers on one host do not collide.
        self.app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                "--loglevel=WARNING",
                f"--hostname=bench{os.getpid()}@%h",
            ]
        )

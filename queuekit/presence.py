"""`Presence`: a worker's entry in the registry: it beats, drains when asked, leaves on exit.

Beats come every `interval` seconds (jittered 0.5 to 1.5 times, as every chore), so a drain
request reaches the worker within 1.5 x `interval` (4.5 s by default), and a worker that goes
silent is no longer listed `TTL_BEATS` x `interval` after its last beat (15 s by default).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict
from importlib.metadata import version
from typing import TYPE_CHECKING

import anyio

from .chores import repeat
from .errors import BackendUnavailableError
from .registry import schedule_report

if TYPE_CHECKING:
    from .worker import Worker

DEFAULT_INTERVAL = 3.0
"""Seconds between a worker's beats."""
TTL_BEATS = 5
"""A worker stays listed for this many beat intervals after its last beat: a few beats may
be late or lost (a busy event loop, a backend outage) before it is taken for gone."""
MAX_LISTED_JOBS = 20
"""The most ids of running jobs an entry lists (its count is always exact)."""
LEAVE_SECONDS = 5.0
"""How long an exiting worker tries to remove its entry (else the entry expires)."""


class Presence:
    """The beat chore of one `Worker`, run beside its pool."""

    def __init__(self, worker: Worker, interval: float) -> None:
        self.worker = worker
        self.interval = interval
        self.ttl = TTL_BEATS * interval
        self.draining = False
        self._backend = worker.queue.backend
        self._described = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": version("queuekit"),
            "concurrency": worker.concurrency,
            "queues": dict(worker.limits),
        }

    async def info(self) -> str:
        """What the worker says of itself at this beat, as JSON."""
        limits = await self._backend.get_limits()
        # The worker's running jobs, read from its pool (the registry reports on it).
        running = [attempt.job_id for attempt in self.worker._in_flight]
        described = {
            **self._described,
            "limits": {q: asdict(limits[q]) for q in self.worker.limits if q in limits},
            "running": len(running),
            "job_ids": running[:MAX_LISTED_JOBS],
            "schedules": [
                schedule_report(state).to_dict() for state in self.worker.scheduler.schedules
            ]
            if self.worker.scheduler is not None
            else [],
        }
        return json.dumps(described, separators=(",", ":"))

    async def beat(self) -> int:
        """One beat; on the first that brings a drain request, stop the worker's claims.
        Returns 0: `repeat` has no count to report."""
        asked = await self._backend.beat_worker(
            self.worker.worker_id, await self.info(), ttl=self.ttl
        )
        if asked and not self.draining:
            self.draining = True
            self.worker._log.warning("drain requested: claiming no more, finishing running jobs")
            self.worker.stop()
        return 0

    async def run(self) -> None:
        """Beat now and every `interval` until cancelled (the pool has stopped), then leave."""
        log = self.worker._log
        try:
            try:
                await self.beat()
            except BackendUnavailableError as exc:
                log.warning("registry beat failed; retrying later: %s", exc)
            except Exception:
                log.exception("registry beat failed; retrying later")
            await repeat(self.beat, self.interval, log, name="registry beat", report="")
        finally:
            with anyio.move_on_after(LEAVE_SECONDS, shield=True):
                try:
                    await self._backend.remove_worker(self.worker.worker_id)
                except Exception as exc:
                    log.warning("could not remove this worker's registry entry: %s", exc)

"""Prometheus metrics (`pip install 'queuekit[metrics]'`): worker hooks, enqueue middleware, stats.

    metrics = Metrics()                                   # its own registry by default
    metrics.instrument(queue)                             # count enqueues through this handle
    Worker(queue, tasks, before_job=[metrics.before_job], after_job=[metrics.after_job])
    create_app(queue, metrics=metrics)                    # GET /metrics (stats read on scrape)

`queuekit worker --metrics-port 9100` does the worker side and serves them on 127.0.0.1.
Series (prefix `queuekit_`): `jobs_enqueued_total`, `jobs_completed_total`, `jobs_failed_total`,
`jobs_dead_total` {queue, type}; `job_duration_seconds` histogram {queue, type};
`jobs_in_flight` {queue}; `queue_jobs` {queue, state}; `queue_oldest_ready_age_seconds`,
`queue_health`, `queue_paused` {queue}.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import anyio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from .context import JobContext
from .job import Job, NewJob
from .middleware import CallEnqueue
from .queue import Queue
from .worker import JobReport, Outcome

STATES = (
    "waiting",
    "pending",
    "scheduled",
    "ready",
    "running",
    "completed",
    "failed",
    "dead",
    "cancelled",
)


class Metrics:
    """The queuekit series in one `CollectorRegistry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        labels = ["queue", "type"]
        self.enqueued = Counter("queuekit_jobs_enqueued", "Jobs enqueued", labels, registry=r)
        self.completed = Counter("queuekit_jobs_completed", "Jobs completed", labels, registry=r)
        self.failed = Counter(
            "queuekit_jobs_failed", "Attempts failed with a retry left", labels, registry=r
        )
        self.dead = Counter("queuekit_jobs_dead", "Jobs that ended dead", labels, registry=r)
        self.duration = Histogram(
            "queuekit_job_duration_seconds", "Attempt duration", labels, registry=r
        )
        self.in_flight = Gauge("queuekit_jobs_in_flight", "Jobs running", ["queue"], registry=r)
        self.depth = Gauge("queuekit_queue_jobs", "Jobs per state", ["queue", "state"], registry=r)
        self.oldest = Gauge(
            "queuekit_queue_oldest_ready_age_seconds",
            "Age of the oldest ready job (0 when none)",
            ["queue"],
            registry=r,
        )
        self.health = Gauge("queuekit_queue_health", "Health score 0-100", ["queue"], registry=r)
        self.paused = Gauge("queuekit_queue_paused", "1 when paused", ["queue"], registry=r)

    # Worker hooks

    async def before_job(self, context: JobContext) -> None:
        self.in_flight.labels(context.job.queue).inc()

    async def after_job(self, context: JobContext, report: JobReport) -> None:
        job = report.job
        self.in_flight.labels(job.queue).dec()
        self.duration.labels(job.queue, job.type).observe(report.duration)
        counter = {
            Outcome.COMPLETED: self.completed,
            Outcome.FAILED: self.failed,
            Outcome.DEAD: self.dead,
        }.get(report.outcome)
        if counter is not None:
            counter.labels(job.queue, job.type).inc()

    # Enqueueing

    async def count_enqueues(self, new_jobs: list[NewJob], call_next: CallEnqueue) -> list[Job]:
        """Enqueue middleware: count the jobs stored (a unique key's holder returned included)."""
        jobs = await call_next(new_jobs)
        for job in jobs:
            self.enqueued.labels(job.queue, job.type).inc()
        return jobs

    def instrument(self, queue: Queue) -> Queue:
        """Count every job enqueued through this `Queue` handle (adds `count_enqueues` to its
        middleware, once)."""
        if self.count_enqueues not in queue.middleware:
            queue.middleware.append(self.count_enqueues)
        return queue

    # Stats

    async def refresh(self, queue: Queue, queues: Iterable[str] | None = None) -> None:
        """Read `stats()` of `queues` (default: every queue) into the gauges."""
        for name in await queue.list_queues() if queues is None else queues:
            stats = await queue.stats(name)
            for state in STATES:
                self.depth.labels(name, state).set(getattr(stats, state))
            self.oldest.labels(name).set(stats.oldest_ready_age or 0.0)
            self.health.labels(name).set(stats.health)
            self.paused.labels(name).set(1 if stats.paused else 0)

    async def poll(
        self, queue: Queue, queues: Iterable[str] | None = None, interval: float = 15.0
    ) -> None:
        """Refresh the stats gauges every `interval` seconds, forever (run it in a task)."""
        names = None if queues is None else list(queues)
        while True:
            with contextlib.suppress(Exception):  # backend down: keep the last values
                await self.refresh(queue, names)
            await anyio.sleep(interval)

    async def scrape(self, queue: Queue | None = None) -> tuple[bytes, str]:
        """The exposition text (stats refreshed first when `queue` is given), and its type."""
        if queue is not None:
            await self.refresh(queue)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve `/metrics` from a background thread; returns the port (pass 0 for any)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)


__all__ = ["Metrics"]

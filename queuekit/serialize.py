"""Jobs and queue stats as JSON-ready dicts: what the CLI's `--json` and the HTTP API print."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from .activity import BUCKET_BOUNDS, Minute
from .job import AttemptRecord, Job
from .limits import LimitUsage
from .stats import QueueStats


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def job_dict(job: Job) -> dict[str, Any]:
    """Every field of a job; timestamps as ISO 8601 strings (UTC)."""
    return {
        "id": job.id,
        "queue": job.queue,
        "type": job.type,
        "status": str(job.status),
        "payload": job.payload,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_at": _time(job.created_at),
        "scheduled_at": _time(job.scheduled_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
        "lease_expires_at": _time(job.lease_expires_at),
        "worker_id": job.worker_id,
        "last_error": job.last_error,
        "unique_key": job.unique_key,
        "limit_key": job.limit_key,
        "result": job.result,
        "headers": job.headers,
        "expires_at": _time(job.expires_at),
        "progress": job.progress,
        "progress_note": job.progress_note,
        "output": job.output,
        "history": None if job.history is None else [attempt_dict(a) for a in job.history],
        "workflow_id": job.workflow_id,
        "batch_id": job.batch_id,
        "debounce_key": job.debounce_key,
        "parents": None
        if job.parents is None
        else [{"id": p.job_id, "on_failure": str(p.on_failure)} for p in job.parents],
        "dependents": None if job.dependents is None else list(job.dependents),
    }


def attempt_dict(record: AttemptRecord) -> dict[str, Any]:
    """One ended attempt of a job; timestamps as ISO 8601 strings (UTC)."""
    return {
        "number": record.number,
        "worker_id": record.worker_id,
        "started_at": _time(record.started_at),
        "finished_at": _time(record.finished_at),
        "outcome": str(record.outcome),
        "error": record.error,
    }


def activity_dict(queue: str, minutes: list[Minute]) -> dict[str, Any]:
    """A queue's activity by minute, with each minute's wait and run percentiles (seconds)."""
    return {
        "queue": queue,
        "bucket_bounds": list(BUCKET_BOUNDS),
        "minutes": [
            {
                "at": _time(minute.at),
                "enqueued": minute.enqueued,
                "completed": minute.completed,
                "failed": minute.failed,
                "dead": minute.dead,
                "wait_p50": minute.wait_p50,
                "wait_p95": minute.wait_p95,
                "run_p50": minute.run_p50,
                "run_p95": minute.run_p95,
                "wait": list(minute.wait),
                "run": list(minute.run),
                "depth": minute.depth,
            }
            for minute in minutes
        ],
    }


def stats_dict(stats: QueueStats) -> dict[str, Any]:
    """A queue's counts, latency, health and paused flag."""
    return {
        "queue": stats.queue,
        "paused": stats.paused,
        "waiting": stats.waiting,
        "pending": stats.pending,
        "scheduled": stats.scheduled,
        "ready": stats.ready,
        "running": stats.running,
        "completed": stats.completed,
        "failed": stats.failed,
        "dead": stats.dead,
        "cancelled": stats.cancelled,
        "total": stats.total,
        "oldest_ready_age": stats.oldest_ready_age,
        "success_rate": stats.success_rate,
        "health": stats.health,
    }


def usage_dict(queue: str, usage: LimitUsage) -> dict[str, Any]:
    """A queue's limits and how much of them is in use; times as ISO 8601 strings (UTC)."""
    return {
        "queue": queue,
        "limits": None if usage.limits is None else asdict(usage.limits),
        "running": usage.running,
        "started_in_window": usage.started_in_window,
        "window_ends_at": _time(usage.window_ends_at),
        "held_until": _time(usage.held_until),
        "held_keys": {key: until.isoformat() for key, until in usage.held_keys.items()},
        "running_by_key": dict(usage.running_by_key),
    }

"""The worker registry as operators read it: `WorkerInfo`, `list_workers`, `drain_worker`.

Each running worker keeps an entry in the backend (see `queuekit.presence`): who it is, what
it serves and runs, when it started and was last seen (the backend's clock). A worker is
listed until `ttl` seconds after its last beat; one asked to drain stops claiming at its next
beat, finishes what it runs and exits, and its entry goes with it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .backend import Backend, WorkerRecord
from .errors import QueueKitError
from .limits import Limits
from .scheduler import ScheduleState

MAX_WORKER_ID_LENGTH = 256
"""A longer id names no worker: it is refused without asking the backend."""


class WorkerNotFoundError(QueueKitError, LookupError):
    """No listed worker has the given id (it exited, went silent, or never ran)."""

    def __init__(self, worker_id: str) -> None:
        super().__init__(f"no running worker has id {worker_id!r}")
        self.worker_id = worker_id


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule as the workers that fire it last reported it (times are the scheduler's
    clock); `list_schedules` merges the reports of replicas."""

    name: str
    type: str
    queue: str
    trigger: str
    """When it fires, as people read it ("every 5m", "cron 0 9 * * 1-5 (UTC)")."""
    next_run: datetime | None
    last_slot: datetime | None
    """The latest slot that has a job, and that job's id (`last_job_id`)."""
    last_job_id: str | None
    skipped_slots: int
    """Slots skipped (missed while no scheduler ran, or by `overlap="skip"`)."""
    last_skip: str | None
    """Why the latest skipped slot was skipped, and when: "overlap at 2026-...". """
    last_error: str | None
    workers: tuple[str, ...] = ()
    """The workers that fire it (filled in by `list_schedules`)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, times in ISO 8601: what presence writes and the API and CLI give."""
        return {
            "name": self.name,
            "type": self.type,
            "queue": self.queue,
            "trigger": self.trigger,
            "next_run": _iso(self.next_run),
            "last_slot": _iso(self.last_slot),
            "last_job_id": self.last_job_id,
            "skipped_slots": self.skipped_slots,
            "last_skip": self.last_skip,
            "last_error": self.last_error,
            "workers": list(self.workers),
        }


def schedule_report(state: ScheduleState) -> ScheduleInfo:
    """What a worker reports of one of its schedules."""
    fire, skips = state.last_fire, state.skipped
    return ScheduleInfo(
        name=state.name,
        type=state.schedule.type,
        queue=state.schedule.queue,
        trigger=state.schedule.trigger.describe(),
        next_run=state.next_run,
        last_slot=None if fire is None else fire.slot,
        last_job_id=None if fire is None else fire.job_id,
        skipped_slots=state.skipped_slots,
        last_skip=f"{skips[-1].reason} at {skips[-1].last.isoformat()}" if skips else None,
        last_error=state.last_error,
    )


def schedule_info(written: dict[str, Any]) -> ScheduleInfo:
    """A schedule as `ScheduleInfo.to_dict` wrote it."""
    return ScheduleInfo(
        name=str(written["name"]),
        type=str(written["type"]),
        queue=str(written["queue"]),
        trigger=str(written["trigger"]),
        next_run=_time(written["next_run"]),
        last_slot=_time(written["last_slot"]),
        last_job_id=written["last_job_id"],
        skipped_slots=int(written["skipped_slots"]),
        last_skip=written["last_skip"],
        last_error=written["last_error"],
        workers=tuple(written.get("workers", ())),
    )


def merged(reports: list[tuple[str, ScheduleInfo]]) -> list[ScheduleInfo]:
    """One entry per schedule name from the (worker id, report) pairs of its replicas: the
    soonest next run, the latest fire, the most skips any replica saw, by name."""
    by_name: dict[str, list[tuple[str, ScheduleInfo]]] = {}
    for worker_id, report in reports:
        by_name.setdefault(report.name, []).append((worker_id, report))
    schedules = []
    for _, replicas in sorted(by_name.items()):
        infos = [info for _, info in replicas]
        latest = max(infos, key=lambda info: info.last_slot or datetime.min.replace(tzinfo=UTC))
        upcoming = [info.next_run for info in infos if info.next_run is not None]
        schedules.append(
            replace(
                latest,
                next_run=min(upcoming, default=None),
                skipped_slots=max(info.skipped_slots for info in infos),
                last_skip=next((i.last_skip for i in infos if i.last_skip), None),
                last_error=next((i.last_error for i in infos if i.last_error), None),
                workers=tuple(sorted(worker_id for worker_id, _ in replicas)),
            )
        )
    return schedules


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A listed worker, as it last described itself."""

    id: str
    host: str
    pid: int
    version: str
    concurrency: int
    queues: dict[str, int]
    """Each queue it claims from, with the most of its jobs it runs at once."""
    limits: dict[str, Limits]
    """The limits (`queuekit.Limits`) of its queues that have some, as it last read them."""
    running: int
    """How many jobs it was running at its last beat."""
    job_ids: list[str]
    """The ids of some of them (at most `queuekit.presence.MAX_LISTED_JOBS`)."""
    started_at: datetime
    last_seen: datetime
    draining: bool
    """An operator asked it to drain: it claims no more, and exits once its jobs are done."""
    schedules: list[ScheduleInfo]
    """The schedules its scheduler fires (`Worker(schedules=...)`), as it last saw them."""

    @property
    def state(self) -> str:
        """Either "draining" or "running"."""
        return "draining" if self.draining else "running"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, times in ISO 8601 (UTC): what `queuekit workers --json` and the API give."""
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "state": self.state,
            "concurrency": self.concurrency,
            "queues": dict(self.queues),
            "limits": {name: asdict(limits) for name, limits in self.limits.items()},
            "running": self.running,
            "job_ids": list(self.job_ids),
            "started_at": self.started_at.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "schedules": [schedule.to_dict() for schedule in self.schedules],
        }


def worker_info(record: WorkerRecord) -> WorkerInfo:
    """A backend's entry read: what the worker wrote of itself, with the backend's times."""
    written: dict[str, Any] = json.loads(record.info)
    return WorkerInfo(
        id=record.worker_id,
        host=str(written["host"]),
        pid=int(written["pid"]),
        version=str(written["version"]),
        concurrency=int(written["concurrency"]),
        queues={str(name): int(slots) for name, slots in written["queues"].items()},
        limits={str(name): Limits(**value) for name, value in written["limits"].items()},
        running=int(written["running"]),
        job_ids=[str(job_id) for job_id in written["job_ids"]],
        started_at=record.started_at,
        last_seen=record.last_seen,
        draining=record.draining,
        schedules=[schedule_info(entry) for entry in written.get("schedules", [])],
    )


async def list_workers(backend: Backend) -> list[WorkerInfo]:
    """Every worker seen within its ttl, by id."""
    return [worker_info(record) for record in await backend.list_workers()]


async def list_schedules(backend: Backend) -> list[ScheduleInfo]:
    """Every schedule a listed worker fires, by name, its replicas' reports merged."""
    workers = await list_workers(backend)
    return merged([(worker.id, schedule) for worker in workers for schedule in worker.schedules])


async def drain_worker(backend: Backend, worker_id: str) -> None:
    """Ask the worker to drain; it learns at its next beat. An id no listed worker has
    raises `WorkerNotFoundError`."""
    if len(worker_id) > MAX_WORKER_ID_LENGTH or not await backend.drain_worker(worker_id):
        raise WorkerNotFoundError(worker_id)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


__all__ = [
    "ScheduleInfo",
    "WorkerInfo",
    "WorkerNotFoundError",
    "drain_worker",
    "list_schedules",
    "list_workers",
]

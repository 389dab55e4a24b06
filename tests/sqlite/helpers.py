"""What several SQLite tests share: a database made by the migrations before a version, and a
round of random operator actions on a workflow's jobs followed by a run of the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

import queuekit
from queuekit import JobStatus, Queue
from queuekit.backends.sqlfiles import load_migrations
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.backends.sqlite import backend as sqlite_module

WORKER = "w"


@asynccontextmanager
async def opened_with(
    path: str, monkeypatch: pytest.MonkeyPatch, versions: Callable[[int], bool]
) -> AsyncIterator[Queue]:
    """The database at `path`, made or kept with the migrations whose version `versions` takes
    only, open as an older queuekit (or one with a version still to ship) would use it."""
    older = [
        (version, script) for version, script in load_migrations("sqlite") if versions(version)
    ]
    monkeypatch.setattr(sqlite_module, "load_migrations", lambda dialect: older)
    try:
        async with queuekit.connect(SQLiteBackend(path)) as queue:
            yield queue
    finally:
        monkeypatch.undo()


async def create_with(
    path: str, monkeypatch: pytest.MonkeyPatch, versions: Callable[[int], bool]
) -> None:
    """Make the database at `path` as `opened_with` does, and close it."""
    async with opened_with(path, monkeypatch, versions):
        pass


async def act(queue: Queue, actions: list[tuple[str, str]], dies: set[str]) -> None:
    """Do `actions` on jobs that are not running, then run every claimable job, those of
    `dies` to dead, in enqueue order (so both backends end them in the same order)."""
    for action, job_id in actions:
        job = await queue.backend.get_job(job_id)
        if job is not None and job.status != JobStatus.RUNNING:
            await getattr(queue, action if action != "delete" else "delete_job")(job_id)
    running = await queue.backend.claim({"default": 1000}, limit=1000, lease=60, worker_id=WORKER)
    for job in sorted(running, key=lambda job: int(job.payload)):
        if job.id in dies:
            assert await queue.backend.fail(job.attempt, "boom", retry_in=None)
        else:
            assert await queue.backend.complete(job.attempt)

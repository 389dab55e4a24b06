"""SQLite keeps, by triggers, the keys that have claimable jobs: the limited claim's turn order."""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from pathlib import Path

import queuekit
from queuekit import JobStatus, Limits
from queuekit.backends.sqlite import SQLiteBackend

KEYS = ["a", "b", "c", None]


def ready_keys(path: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The table's (queue, key) rows, and those the jobs say it should hold."""
    with closing(sqlite3.connect(path)) as db:
        kept = set(db.execute("SELECT queue, key FROM queuekit_limit_ready"))
        derived = set(
            db.execute(
                "SELECT DISTINCT queue, limit_key FROM queuekit_jobs"
                " WHERE limit_key IS NOT NULL AND status IN ('pending', 'failed')"
            )
        )
    return kept, derived


async def test_the_ready_keys_follow_every_change_of_the_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    rng = random.Random(7)
    async with queuekit.Queue(SQLiteBackend(str(path))) as queue:
        backend = queue.backend
        await queue.set_limits("q", Limits(per_key=2))
        running: list[queuekit.Job] = []
        for _ in range(400):
            action = rng.random()
            if action < 0.3:
                await queue.enqueue("t", queue=rng.choice(["q", "r"]), limit_key=rng.choice(KEYS))
            elif action < 0.5:
                running += await backend.claim({"q": 3, "r": 3}, limit=3, lease=60, worker_id="w")
            elif action < 0.75 and running:
                job = running.pop(rng.randrange(len(running)))
                outcome = rng.choice(["complete", "retry", "dead", "snooze"])
                if outcome == "complete":
                    await backend.complete(job.attempt)
                elif outcome == "snooze":
                    await backend.snooze(job.attempt, 0)
                else:
                    await backend.fail(job.attempt, "x", retry_in=0 if outcome == "retry" else None)
            else:
                jobs = (await queue.list_jobs(limit=50)).jobs
                if jobs:
                    job = rng.choice(jobs)
                    if job.status in (JobStatus.DEAD, JobStatus.CANCELLED):
                        await queue.replay(job.id)
                    elif job.status != JobStatus.RUNNING and rng.random() < 0.5:
                        await queue.delete_job(job.id)
                    else:
                        await queue.cancel(job.id)
                        running = [r for r in running if r.id != job.id]
            kept, derived = ready_keys(path)
            assert kept == derived
        assert derived, "the walk should leave some keys ready"

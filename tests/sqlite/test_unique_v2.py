"""SQLite specifics of unique keys held after the end and of debounce keys (migration 16): holders
found from the unique index, a lapsed holder let go by a replay's own statement, keys inside a
caller's transaction, and the upgrade of a database from before the migration."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import aiosqlite
import pytest

import queuekit
from queuekit import JobStatus, OnFailure, Parent, Queue
from queuekit.backends.sqlite.queries import SQL

from ..waiting import eventually
from .helpers import WORKER, create_with

FAST = "?queuekit_synchronous=normal"
"""What these tests test does not need each commit synced to disk."""
DAY = 86_400.0


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[Queue]:
    async with queuekit.connect(f"sqlite:///{tmp_path / 'jobs.db'}{FAST}") as queue:
        yield queue


async def _end(queue: Queue, job: queuekit.Job, *, dead: bool = False) -> None:
    (running,) = await queue.backend.claim({job.queue: 1}, limit=1, lease=60, worker_id=WORKER)
    assert running.id == job.id
    if dead:
        assert await queue.backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
    else:
        assert await queue.backend.complete(running.attempt) == JobStatus.COMPLETED


@pytest.mark.parametrize("name", ["take_unique", "unique_holder", "take_debounced"])
async def test_a_keys_holder_is_read_from_its_index(
    queue: Queue, tmp_path: Path, name: str
) -> None:
    params = {
        "queue": "q",
        "unique_key": "k",
        "debounce_key": "k",
        "payload": "1",
        "run_at": None,
        "delay": 0.0,
        "replace": 1,
    }
    with closing(sqlite3.connect(tmp_path / "jobs.db")) as db:
        plan = str(db.execute(f"EXPLAIN QUERY PLAN {SQL[name]}", params).fetchall())
    index = "queuekit_jobs_debounce" if name == "take_debounced" else "queuekit_jobs_unique"
    assert f"USING INDEX {index} (queue=? AND" in plan, plan


async def test_a_replay_lets_go_of_a_holder_whose_hold_is_over(queue: Queue) -> None:
    """The replayed job takes its key in the transaction that replays it: the finished holder
    whose period ended leaves the unique index first (else the index would refuse the row).
    Each replay reads the clock once: tried while the period runs out, none of them may find
    the hold not over in one statement and over in the next (an IntegrityError). (That a hold
    not over refuses the replay: the DAY-long holds below.)"""
    old = await queue.enqueue("t", unique_key="k", max_attempts=1)
    await _end(queue, old, dead=True)
    holder = await queue.enqueue("t", unique_key="k", unique_for=0.2)
    assert holder.id != old.id
    await _end(queue, holder)

    async def replayed() -> bool:
        job = await queue.replay(old.id)
        return job is not None and job.status == JobStatus.PENDING

    await eventually(replayed, "the holder's period ended")
    assert (await queue.get_job(holder.id)).status == JobStatus.COMPLETED
    assert (await queue.enqueue("t", unique_key="k")).id == old.id


async def test_a_dependent_whose_key_a_finished_job_holds_stays_cancelled(queue: Queue) -> None:
    parent = await queue.enqueue("t", max_attempts=1)
    child = await queue.enqueue("t", after=[parent], unique_key="k")
    await _end(queue, parent, dead=True)
    holder = await queue.enqueue("t", unique_key="k", unique_for=DAY)
    await _end(queue, holder)
    await queue.replay(parent.id)
    assert (await queue.get_job(child.id)).status == JobStatus.CANCELLED


async def test_a_trigger_dependent_whose_debounce_key_was_taken_stays_cancelled(
    queue: Queue,
) -> None:
    """A TRIGGER dependent cancelled because no parent died comes back with a replay of its
    parent, unless an unstarted job took its debounce key meanwhile."""
    parent = await queue.enqueue("t")
    on_death = await queue.enqueue(
        "t", after=[Parent(parent.id, OnFailure.TRIGGER)], debounce_key="d"
    )
    await queue.cancel(parent.id)
    assert (await queue.get_job(on_death.id)).last_error == "no parent died"
    taken = await queue.enqueue("t", debounce_key="d")
    assert taken.id != on_death.id
    assert (await queue.replay(parent.id)).status == JobStatus.PENDING
    assert (await queue.get_job(on_death.id)).status == JobStatus.CANCELLED


async def test_keys_inside_a_callers_transaction(tmp_path: Path) -> None:
    """A replace and a debounce rewrite are part of the caller's transaction: a rollback takes
    them back with everything else."""
    path = tmp_path / "jobs.db"
    async with queuekit.connect(f"sqlite:///{path}") as queue:
        first = await queue.enqueue("t", {"v": 1}, unique_key="u", delay=DAY)
        debounced = await queue.enqueue("t", {"v": 1}, debounce_key="d", delay=DAY)
        async with aiosqlite.connect(path, isolation_level=None) as db:
            await db.execute("BEGIN IMMEDIATE")
            replaced = await queue.enqueue(
                "t", {"v": 2}, unique_key="u", on_conflict="replace", connection=db
            )
            pushed = await queue.enqueue("t", {"v": 2}, debounce_key="d", connection=db)
            assert (replaced.id, replaced.payload) == (first.id, {"v": 2})
            assert (pushed.id, pushed.payload) == (debounced.id, {"v": 2})
            await db.execute("ROLLBACK")
        assert (await queue.get_job(first.id)).payload == {"v": 1}
        assert (await queue.get_job(debounced.id)).payload == {"v": 1}


async def test_a_database_from_before_migration_16_upgrades_under_an_open_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older database's jobs keep their meaning (a finished job holds no key), the edited
    edges table takes TRIGGER and passes SQLite's integrity check, and a connection open since
    before the upgrade reads the new schema without reopening."""
    path = str(tmp_path / "jobs.db")
    await create_with(path, monkeypatch, lambda version: version < 16)
    with closing(sqlite3.connect(path, isolation_level=None)) as early:
        early.execute(
            "INSERT INTO queuekit_jobs (id, queue, type, payload, priority, status,"
            " max_attempts, created_at, scheduled_at, unique_key) VALUES ('old', 'default', 't',"
            " '1', 10, 'pending', 3, 0, 0, 'k')"
        )
        with pytest.raises(sqlite3.IntegrityError):
            early.execute("INSERT INTO queuekit_jobs_parents VALUES ('a', 0, 'b', 'trigger')")
        async with queuekit.connect(f"sqlite:///{path}") as queue:
            old = await queue.enqueue("t", unique_key="k")
            assert old.id == "old"
            await _end(queue, old)
            assert (await queue.enqueue("t", unique_key="k")).id != old.id
            child = await queue.enqueue("t", after=[Parent(old.id, OnFailure.TRIGGER)])
            assert (child.status, child.last_error) == (JobStatus.CANCELLED, "no parent died")
        early.execute("INSERT INTO queuekit_jobs_parents VALUES ('a', 0, 'b', 'trigger')")
        assert early.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

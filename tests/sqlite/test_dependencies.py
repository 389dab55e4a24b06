"""SQLite specifics of dependencies (migration 15): a parent's end racing its child's enqueue on
another connection, cascades deeper than SQLite's trigger nesting allows, a 10,000-parent
fan-in at a cost per parent that does not grow with it, and the migration itself."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

import queuekit
from queuekit import JobStatus, OnFailure, Parent, Queue, UnknownParentError
from queuekit.backend import JobFilter
from queuekit.backends.sqlfiles import load_migrations
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.backends.sqlite.queries import SQL

from .helpers import WORKER, act, create_with

FAST = "?queuekit_synchronous=normal"
"""What these tests test does not need each commit synced to disk."""


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[Queue]:
    async with queuekit.connect(f"sqlite:///{tmp_path / 'jobs.db'}{FAST}") as queue:
        yield queue


def _sqlite(queue: Queue) -> SQLiteBackend:
    assert isinstance(queue.backend, SQLiteBackend)
    return queue.backend


async def _claim(backend: SQLiteBackend, limit: int = 1) -> list[queuekit.Job]:
    return await backend.claim({"default": limit}, limit=limit, lease=60, worker_id=WORKER)


async def test_a_parent_ending_while_its_child_is_enqueued_never_leaves_it_waiting(
    tmp_path: Path,
) -> None:
    """Two connections, one ending parents (completed or dead) while the other enqueues their
    children: whichever commits first, the child is decided."""
    path = str(tmp_path / "jobs.db")
    finisher = SQLiteBackend(path, synchronous="normal")
    producer = SQLiteBackend(path, synchronous="normal")
    await finisher.open()
    await producer.open()
    try:
        for n in range(200):
            parent = await producer.enqueue(queuekit.new_job("t", n, max_attempts=1))
            (running,) = await _claim(finisher)
            dies = n % 2 == 1
            if dies:
                ending = finisher.fail(running.attempt, "boom", retry_in=None)
            else:
                ending = finisher.complete(running.attempt)
            child = queuekit.new_job("t", n, after=[parent])
            await asyncio.gather(ending, producer.enqueue(child))
            read = await producer.get_job(child.id)
            assert read is not None
            expected = JobStatus.CANCELLED if dies else JobStatus.PENDING
            assert read.status == expected, (n, read.status)
            if not dies:
                (released,) = await _claim(finisher)
                assert released.id == child.id
                assert await finisher.complete(released.attempt)
    finally:
        await finisher.close()
        await producer.close()


@pytest.mark.parametrize("length", [500, 3000])
async def test_a_long_chain_is_cancelled_and_brought_back_whole(queue: Queue, length: int) -> None:
    """Deeper than SQLite's 1000 levels of nested triggers: a cascade is one statement."""
    backend = _sqlite(queue)
    jobs = [queuekit.new_job("t", 0, max_attempts=1)]
    for n in range(1, length):
        jobs.append(queuekit.new_job("t", n, after=[jobs[-1]]))
    await queue.enqueue_many(jobs)
    (first,) = await _claim(backend)
    assert await backend.fail(first.attempt, "boom", retry_in=None) == JobStatus.DEAD
    stats = await queue.stats()
    assert (stats.cancelled, stats.waiting, stats.dead) == (length - 1, 0, 1)
    last = await queue.get_job(jobs[-1].id)
    assert last.last_error == f"parent {jobs[-2].id} cancelled"
    assert (await queue.get_job(jobs[1].id)).last_error == f"parent {jobs[0].id} dead"

    assert (await queue.replay(jobs[0].id)).status == JobStatus.PENDING
    stats = await queue.stats()
    assert (stats.waiting, stats.pending, stats.cancelled) == (length - 1, 1, 0)
    back = await queue.get_job(jobs[-1].id)
    assert (back.finished_at, back.last_error) == (None, None)
    for job in jobs[:3]:
        (running,) = await _claim(backend)
        assert running.id == job.id
        assert await backend.complete(running.attempt)
    stats = await queue.stats()
    assert (stats.completed, stats.pending, stats.waiting) == (3, 1, length - 4)


async def test_a_fan_in_of_10000_parents(queue: Queue, tmp_path: Path) -> None:
    backend = _sqlite(queue)
    parents = await queue.enqueue_many(queuekit.new_job("t", n) for n in range(10_000))
    join = await queue.enqueue("join", after=parents)
    assert join.status == JobStatus.WAITING
    read = await queue.get_job(join.id)
    assert read.parents == tuple(Parent(parent.id) for parent in parents)
    assert (await queue.get_job(parents[0].id)).dependents == (join.id,)
    running = await _claim(backend, 10_000)
    assert len(running) == 10_000 and join.id not in {job.id for job in running}
    # Together, so the backend writes them in batches.
    assert all(await asyncio.gather(*(backend.complete(job.attempt) for job in running[:-1])))
    assert (await queue.get_job(join.id)).status == JobStatus.WAITING
    # The last parent's end costs what any job's end costs with one dependent: compare the
    # SQLite instructions it takes with a one-parent child's.
    small_parent = await queue.enqueue("t", queue="small")
    await queue.enqueue("t", queue="small", after=[small_parent])
    (small,) = await backend.claim({"small": 1}, limit=1, lease=60, worker_id=WORKER)
    costs = [_steps(tmp_path / "jobs.db", job) for job in (small, running[-1])]
    assert costs[1] < 2 * costs[0], costs
    assert (await queue.get_job(join.id)).status == JobStatus.PENDING


def _steps(path: Path, job: queuekit.Job) -> int:
    """How many times SQLite's progress handler is called (every 100 instructions) while the
    `complete` statement completes `job`, on a connection of this test's own."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.set_progress_handler(count, 100)
        params = {"id": job.id, "lease_token": job.lease_token, "result": None}
        assert db.execute(SQL["complete"], params).fetchall()
    return steps


async def test_a_release_wakes_a_worker_waiting_on_the_dependents_queue(queue: Queue) -> None:
    """This process's waiters learn of a release at once (another process's at its poll)."""
    backend = _sqlite(queue)
    parent = await queue.enqueue("t")
    await queue.enqueue("t", queue="next", after=[parent])
    (running,) = await _claim(backend)
    waiting = asyncio.create_task(backend.wait_for_work(["next"], timeout=600))
    await asyncio.sleep(0)  # it starts, and counts the wake-ups made so far
    assert await backend.complete(running.attempt)
    await asyncio.wait_for(waiting, timeout=60)
    (released,) = await backend.claim({"next": 1}, limit=1, lease=60, worker_id=WORKER)
    assert released.status == JobStatus.RUNNING


@pytest.mark.parametrize("ordered", [False, True])
async def test_a_released_keyed_job_is_claimed_under_its_queues_limits(
    queue: Queue, ordered: bool
) -> None:
    """A waiting job holds no turn of its key (it is not claimable, and an ordered key's next
    job does not wait for it); once released, its key is ready (migration 7's triggers)."""
    backend = _sqlite(queue)
    await queue.set_limits("limited", queuekit.Limits(per_key=1, ordered=ordered))
    parent = await queue.enqueue("t")
    child = await queue.enqueue("t", queue="limited", limit_key="k", after=[parent])
    later = await queue.enqueue("t", queue="limited", limit_key="k")
    (first,) = await backend.claim({"limited": 5}, limit=5, lease=60, worker_id=WORKER)
    assert first.id == later.id
    assert await backend.complete(first.attempt)
    (running,) = await _claim(backend)
    assert await backend.complete(running.attempt)
    (released,) = await backend.claim({"limited": 5}, limit=5, lease=60, worker_id=WORKER)
    assert released.id == child.id


async def test_a_waiting_job_expires_only_once_released(queue: Queue) -> None:
    backend = _sqlite(queue)
    parent = await queue.enqueue("t")
    past = datetime.now(UTC) - timedelta(seconds=1)
    child = await queue.enqueue("t", after=[parent], expires_at=past)
    assert await backend.expire() == 0
    assert (await queue.get_job(child.id)).status == JobStatus.WAITING
    (running,) = await _claim(backend)
    assert await backend.complete(running.attempt)
    assert (await queue.get_job(child.id)).status == JobStatus.PENDING
    assert await backend.expire() == 1
    expired = await queue.get_job(child.id)
    assert (expired.status, expired.last_error) == (JobStatus.CANCELLED, "expired")


async def test_a_replay_of_a_batch_leaves_the_dependents_it_brings_back_waiting(
    queue: Queue,
) -> None:
    """One replay statement over a parent and the child it cancelled: the child comes back
    to waiting (for the parent) before its own turn, which then leaves it so."""
    parent = await queue.enqueue("t")
    child = await queue.enqueue("t", after=[parent])
    grandchild = await queue.enqueue("t", after=[child])
    await queue.cancel(parent.id)
    cancelled = JobFilter(status=JobStatus.CANCELLED)
    batch = await queue.backend.replay_batch(cancelled, after=0, limit=10)
    assert batch.changed == 3
    statuses = [(await queue.get_job(job.id)).status for job in (parent, child, grandchild)]
    assert statuses == [JobStatus.PENDING, JobStatus.WAITING, JobStatus.WAITING]


async def test_a_dependent_whose_key_was_taken_meanwhile_stays_cancelled(queue: Queue) -> None:
    backend = _sqlite(queue)
    parent = await queue.enqueue("t", max_attempts=1)
    child = await queue.enqueue("t", after=[parent], unique_key="k")
    grandchild = await queue.enqueue("t", after=[child])
    (running,) = await _claim(backend)
    assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
    holder = await queue.enqueue("t", unique_key="k")
    assert holder.id != child.id
    await queue.replay(parent.id)
    assert [(await queue.get_job(job.id)).status for job in (child, grandchild)] == [
        JobStatus.CANCELLED,
        JobStatus.CANCELLED,
    ]


async def test_a_job_enqueued_again_under_a_deleted_parents_id_is_another_parent(
    queue: Queue,
) -> None:
    backend = _sqlite(queue)
    parent = await queue.enqueue("t", id="p")
    await queue.enqueue("t", id="other-parent", queue="elsewhere")
    child = await queue.enqueue("t", after=["p", Parent("other-parent", OnFailure.RUN)])
    assert child.status == JobStatus.WAITING
    await queue.delete_job("p")
    assert (await queue.get_job(child.id)).status == JobStatus.CANCELLED
    again = await queue.enqueue("t", id="p", max_attempts=1)
    assert again.id == parent.id
    assert (await queue.get_job("p")).dependents == ()
    assert (await queue.get_job(child.id)).parents == (
        Parent("p"),
        Parent("other-parent", OnFailure.RUN),
    )
    other = await queue.enqueue("t", after=["p"])
    (running,) = await _claim(backend)
    assert running.id == "p"
    assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
    await queue.replay("p")
    assert (await queue.get_job(child.id)).status == JobStatus.CANCELLED, "not its parent"
    assert (await queue.get_job(other.id)).status == JobStatus.WAITING


async def test_an_unknown_parent_leaves_nothing_in_the_callers_transaction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    async with queuekit.connect(f"sqlite:///{path}") as queue:
        async with aiosqlite.connect(path, isolation_level=None) as db:
            await db.execute("BEGIN IMMEDIATE")
            kept = await queue.enqueue("t", connection=db)
            first = queuekit.new_job("t")
            with pytest.raises(UnknownParentError):
                await queue.enqueue_many(
                    [first, queuekit.new_job("t", after=["missing"])], connection=db
                )
            await db.execute("COMMIT")
        assert await queue.backend.get_job(kept.id) is not None
        assert await queue.backend.get_job(first.id) is None


async def test_a_parent_completed_in_the_callers_transaction_releases_its_dependents(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    async with queuekit.connect(f"sqlite:///{path}") as queue:
        backend = _sqlite(queue)
        parent = await queue.enqueue("t")
        child = await queue.enqueue("t", after=[parent])
        (running,) = await _claim(backend)
        async with aiosqlite.connect(path, isolation_level=None) as db:
            await db.execute("BEGIN IMMEDIATE")
            assert await backend.complete_in_transaction(db, running.attempt, None)
            await db.execute("COMMIT")
        assert (await queue.get_job(child.id)).status == JobStatus.PENDING


async def test_a_workflow_is_listed_from_its_index(queue: Queue, tmp_path: Path) -> None:
    sql = SQL["list"].replace("{filter}", f" AND {SQL['search_workflow_id']}")
    params = {"workflow_id": "w", "before": 10, "limit": 5}
    with closing(sqlite3.connect(tmp_path / "jobs.db")) as db:
        plan = str(db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
    assert "queuekit_jobs_workflow" in plan and "TEMP B-TREE" not in plan, plan


async def test_a_missing_version_is_applied_after_a_higher_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions ship in the order they are planned: a database may have 15 before 13."""
    path = str(tmp_path / "jobs.db")
    await create_with(path, monkeypatch, lambda version: version != 13)
    backend = SQLiteBackend(path)
    await backend.open()
    try:
        assert await backend.migrate() == []
    finally:
        await backend.close()
    with closing(sqlite3.connect(path)) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM queuekit_migrations")]
        columns = [row[1] for row in db.execute("PRAGMA table_info(queuekit_activity)")]
    assert sorted(versions) == [version for version, _ in load_migrations("sqlite")]
    assert "depth" in columns


async def test_a_database_from_before_dependencies_upgrades_under_an_open_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's connection, open since before the upgrade, reads the new schema
    (waiting allowed) without reopening; the edited table passes SQLite's integrity check."""
    path = str(tmp_path / "jobs.db")
    await create_with(path, monkeypatch, lambda version: version < 15)
    with closing(sqlite3.connect(path, isolation_level=None)) as early:
        early.execute(
            "INSERT INTO queuekit_jobs (id, queue, type, payload, priority, status,"
            " max_attempts, created_at, scheduled_at) VALUES ('old', 'default', 't', '1', 10,"
            " 'pending', 3, 0, 0)"
        )
        with pytest.raises(sqlite3.IntegrityError):
            early.execute("UPDATE queuekit_jobs SET status = 'waiting'")
        async with queuekit.connect(f"sqlite:///{path}") as queue:
            child = await queue.enqueue("t", after=["old"])
            assert child.status == JobStatus.WAITING
            early.execute("UPDATE queuekit_jobs SET status = 'waiting' WHERE id = 'old'")
            assert (await queue.stats()).waiting == 2
        assert early.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        with pytest.raises(sqlite3.IntegrityError):
            early.execute("UPDATE queuekit_jobs SET status = 'unheard-of'")


def _dag(name: str, size: int, rng: random.Random) -> list[queuekit.NewJob]:
    """Jobs <name>-0, <name>-1, ... (payload 0, 1, ...) each with up to three earlier parents,
    on random policies."""
    jobs: list[queuekit.NewJob] = []
    for n in range(size):
        parents = rng.sample(jobs, min(len(jobs), rng.choice([0, 1, 1, 2, 3])))
        policies = [
            Parent(p.id, rng.choice([OnFailure.CANCEL, OnFailure.RUN, OnFailure.IGNORE]))
            for p in parents
        ]
        jobs.append(queuekit.new_job("t", n, id=f"{name}-{n}", after=policies, max_attempts=1))
    return jobs


@pytest.mark.parametrize("seed", [15, 2])
async def test_random_cancels_deletes_replays_and_ends_keep_every_count_right(
    queue: Queue, tmp_path: Path, seed: int
) -> None:
    """Random DAGs whose jobs are cancelled, deleted, replayed, completed and killed: after
    each step every stored decision agrees with the parents' states (`_check`)."""
    rng = random.Random(seed)
    for dag in range(3):
        jobs = _dag(f"dag{dag}", 150, rng)
        await queue.enqueue_many(jobs)
        ids = [job.id for job in jobs]
        for _ in range(50):
            actions = [(rng.choice(["cancel", "delete", "replay"]), rng.choice(ids)) for _ in "ab"]
            await act(queue, actions, {job_id for job_id in ids if rng.random() < 0.3})
            _check(tmp_path / "jobs.db")
        await queue.delete_all(status=JobStatus.COMPLETED)


def _check(path: Path) -> None:
    """What the triggers keep, read on a connection of the test's own: a waiting job counts its
    unfinished parents (at least one) and no parent that cancels it has failed; a job cancelled
    by a parent names one whose edge says cancel and that is dead, cancelled or gone; a job
    named as a parent is marked as having dependents."""
    parents = """
        SELECT e.on_failure, p.status FROM queuekit_jobs_parents AS e
        LEFT JOIN queuekit_jobs AS p ON p.id = e.parent_id AND p.seq < c.seq
        WHERE e.child_id = c.id"""
    wrong = {
        "miscounted": f"""
            SELECT c.id FROM queuekit_jobs AS c WHERE c.status = 'waiting' AND (
                c.open_parents < 1 OR c.open_parents != (
                    SELECT count(*) FROM ({parents}) AS p
                    WHERE p.status NOT IN ('completed', 'dead', 'cancelled')
                ) OR EXISTS (
                    SELECT 1 FROM ({parents}) AS p WHERE p.on_failure = 'cancel'
                      AND (p.status IS NULL OR p.status IN ('dead', 'cancelled'))
                ))""",
        "cancelled by no failed parent": """
            SELECT c.id FROM queuekit_jobs AS c WHERE c.cancelled_by IS NOT NULL AND (
                c.status != 'cancelled' OR NOT EXISTS (
                    SELECT 1 FROM queuekit_jobs_parents AS e
                    LEFT JOIN queuekit_jobs AS p ON p.id = e.parent_id AND p.seq < c.seq
                    WHERE e.child_id = c.id AND e.parent_id = c.cancelled_by
                      AND e.on_failure = 'cancel'
                      AND (p.id IS NULL OR p.status IN ('dead', 'cancelled'))
                ))""",
        "unmarked parent": """
            SELECT p.id FROM queuekit_jobs_parents AS e
            JOIN queuekit_jobs AS p ON p.id = e.parent_id
            JOIN queuekit_jobs AS c ON c.id = e.child_id AND c.seq > p.seq
            WHERE NOT p.has_dependents""",
    }
    with closing(sqlite3.connect(path)) as db:
        for what, sql in wrong.items():
            assert db.execute(sql).fetchall() == [], what

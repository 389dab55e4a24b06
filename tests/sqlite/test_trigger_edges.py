"""SQLite specifics of TRIGGER edges (migration 16): random DAGs mixing them with the other
policies keep every stored decision right, and a "no parent died" cancel cascades through a
long chain in one statement."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

import queuekit
from queuekit import JobStatus, OnFailure, Parent, Queue

from .helpers import WORKER, act

FAST = "?queuekit_synchronous=normal"
"""What these tests test does not need each commit synced to disk."""
EACH_EDGE = [OnFailure.CANCEL, OnFailure.RUN, OnFailure.IGNORE]


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[Queue]:
    async with queuekit.connect(f"sqlite:///{tmp_path / 'jobs.db'}{FAST}") as queue:
        yield queue


async def test_a_chain_of_trigger_edges_is_cancelled_whole_and_comes_back(queue: Queue) -> None:
    """Deeper than SQLite's 1000 levels of nested triggers: each job's one parent ends without
    dying, so each is cancelled ("no parent died"), in the statement that ends the first."""
    length = 1500
    jobs = [queuekit.new_job("t", 0)]
    for n in range(1, length):
        jobs.append(queuekit.new_job("t", n, after=[Parent(jobs[-1].id, OnFailure.TRIGGER)]))
    await queue.enqueue_many(jobs)
    (first,) = await queue.backend.claim({"default": 1}, limit=1, lease=60, worker_id=WORKER)
    assert await queue.backend.complete(first.attempt) == JobStatus.COMPLETED
    stats = await queue.stats()
    assert (stats.cancelled, stats.waiting, stats.completed) == (length - 1, 0, 1)
    assert (await queue.get_job(jobs[-1].id)).last_error == "no parent died"
    assert (await queue.replay(jobs[1].id)).status == JobStatus.PENDING
    stats = await queue.stats()
    assert (stats.pending, stats.waiting, stats.cancelled) == (1, length - 2, 0)


async def test_a_trigger_dependent_whose_parents_end_together_settles_its_own(
    queue: Queue,
) -> None:
    """Cancelling x cancels y and z, and so both parents of `on_death` in one statement, which
    cannot count them: its own dependent is decided in the same transaction (`take_decided`),
    and a replay of x brings all four back, the last two a step later in that transaction."""
    await queue.enqueue("t", id="x")
    await queue.enqueue("t", id="y", after=["x"])
    await queue.enqueue("t", id="z", after=["x"])
    on_death = await queue.enqueue(
        "t", after=[Parent("y", OnFailure.TRIGGER), Parent("z", OnFailure.TRIGGER)]
    )
    after_it = await queue.enqueue("t", after=[on_death])
    await queue.cancel("x")
    assert [(await queue.get_job(job.id)).last_error for job in (on_death, after_it)] == [
        "no parent died",
        f"parent {on_death.id} cancelled",
    ]
    assert (await queue.replay("x")).status == JobStatus.PENDING
    statuses = [(await queue.get_job(j)).status for j in ("y", "z", on_death.id, after_it.id)]
    assert statuses == [JobStatus.WAITING] * 4
    assert (await queue.get_job(on_death.id)).last_error is None


def _dag(name: str, size: int, rng: random.Random) -> list[queuekit.NewJob]:
    """Jobs <name>-0, <name>-1, ... (payload 0, 1, ...) each with up to three earlier parents:
    all on TRIGGER edges, or each on a random other policy."""
    jobs: list[queuekit.NewJob] = []
    for n in range(size):
        parents = rng.sample(jobs, min(len(jobs), rng.choice([0, 1, 1, 2, 3])))
        triggered = rng.random() < 0.3
        policies = [
            Parent(p.id, OnFailure.TRIGGER if triggered else rng.choice(EACH_EDGE)) for p in parents
        ]
        jobs.append(queuekit.new_job("t", n, id=f"{name}-{n}", after=policies, max_attempts=1))
    return jobs


@pytest.mark.parametrize("seed", [7, 11, 32])
async def test_random_dags_with_trigger_edges_keep_every_decision_right(
    queue: Queue, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    for dag in range(3):
        jobs = _dag(f"dag{dag}", 150, rng)
        await queue.enqueue_many(jobs)
        _check(tmp_path / "jobs.db")
        ids = [job.id for job in jobs]
        for _ in range(50):
            actions = [(rng.choice(["cancel", "delete", "replay"]), rng.choice(ids)) for _ in "ab"]
            await act(queue, actions, {job_id for job_id in ids if rng.random() < 0.3})
            _check(tmp_path / "jobs.db")
        await queue.delete_all(status=JobStatus.COMPLETED)


def _check(path: Path) -> None:
    """What the triggers keep: a waiting job counts its unfinished parents (at least one), no
    parent that cancels it has failed, and none of its TRIGGER parents is dead (a parent
    deleted once finished decided nothing, so a gone one tells nothing); a job a parent
    cancelled names one whose edge says cancel and that is dead, cancelled or gone, or, with
    TRIGGER edges, one of its parents, all of which finished (or went) and none dead."""
    parents = """
        SELECT e.on_failure, p.status, e.parent_id FROM queuekit_jobs_parents AS e
        LEFT JOIN queuekit_jobs AS p ON p.id = e.parent_id AND p.seq < c.seq
        WHERE e.child_id = c.id"""
    wrong = {
        "miscounted": f"""
            SELECT c.id FROM queuekit_jobs AS c WHERE c.status = 'waiting' AND (
                c.open_parents < 1 OR c.open_parents != (
                    SELECT count(*) FROM ({parents}) AS p
                    WHERE p.status NOT IN ('completed', 'dead', 'cancelled')
                ) OR EXISTS (
                    SELECT 1 FROM ({parents}) AS p
                    WHERE (p.on_failure = 'cancel' AND p.status IN ('dead', 'cancelled'))
                       OR (p.on_failure = 'trigger' AND p.status = 'dead')
                ))""",
        "cancelled by no failed parent": f"""
            SELECT c.id FROM queuekit_jobs AS c WHERE c.cancelled_by IS NOT NULL AND (
                c.status != 'cancelled' OR NOT (EXISTS (
                    SELECT 1 FROM ({parents}) AS p
                    WHERE p.parent_id = c.cancelled_by AND p.on_failure = 'cancel'
                      AND (p.status IS NULL OR p.status IN ('dead', 'cancelled'))
                ) OR (c.last_error = 'no parent died' AND EXISTS (
                    SELECT 1 FROM ({parents}) AS p
                    WHERE p.parent_id = c.cancelled_by AND p.on_failure = 'trigger'
                ) AND NOT EXISTS (
                    SELECT 1 FROM ({parents}) AS p
                    WHERE p.status NOT IN ('completed', 'cancelled')
                ))))""",
    }
    with closing(sqlite3.connect(path)) as db:
        for what, sql in wrong.items():
            assert db.execute(sql).fetchall() == [], what

"""SQLite specifics: many processes on one file, migrations, URLs."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import anyio
import pytest

import queuekit
from queuekit import InvalidURLError
from queuekit.activity import ActivityCounts
from queuekit.backends.sqlfiles import load_migrations
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.backends.sqlite import repairs as sqlite_repairs
from queuekit.backends.sqlite.queries import SQL

from .helpers import create_with

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_many_processes_claim_each_job_once(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    total = 2000
    async with queuekit.connect(f"sqlite:///{path}") as queue:
        await queue.enqueue_many(queuekit.new_job("t", {"n": n}) for n in range(total))
        claimers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.sqlite.claimer", str(path)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        # All connected before any claims, so that none drains the queue by starting first.
        for claimer in claimers:
            assert claimer.stdout is not None
            assert await anyio.to_thread.run_sync(claimer.stdout.readline) == "ready\n"
        for claimer in claimers:
            assert claimer.stdin is not None
            claimer.stdin.write("go\n")
            claimer.stdin.flush()
        outputs = [claimer.communicate(timeout=120)[0].split() for claimer in claimers]
        assert all(claimer.returncode == 0 for claimer in claimers)
        claimed = [job_id for output in outputs for job_id in output]
        assert len(claimed) == total and len(set(claimed)) == total
        assert sum(1 for output in outputs if output) >= 2, "the processes should share the work"
        assert (await queue.stats()).completed == total


async def test_a_commit_from_another_process_wakes_a_waiting_worker(tmp_path: Path) -> None:
    # Two connections to one file stand for two processes: SQLite cannot signal between them.
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with queuekit.connect(url) as waiting, queuekit.connect(url) as other:
        waiter = asyncio.create_task(waiting.backend.wait_for_work(["default"], 60))
        await asyncio.sleep(0.2)
        assert not waiter.done()
        await other.enqueue("t", queue="elsewhere")
        await asyncio.sleep(0.2)
        assert not waiter.done()  # work in another queue is not ours
        await other.enqueue("t")
        await asyncio.wait_for(waiter, 5)


async def test_a_write_made_while_the_waiter_looks_elsewhere_still_wakes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with queuekit.connect(f"sqlite:///{tmp_path / 'jobs.db'}") as queue:
        backend = queue.backend
        assert isinstance(backend, SQLiteBackend)
        data_version = backend._data_version
        looks = 0

        async def enqueue_while_looking() -> int:
            # The waiter is reading the database's version, not waiting, when the job lands.
            nonlocal looks
            looks += 1
            if looks == 3:
                await queue.enqueue("t")
            return await data_version()

        monkeypatch.setattr(backend, "_data_version", enqueue_while_looking)
        await asyncio.wait_for(backend.wait_for_work(["default"], 60), 5)


async def test_schema_is_versioned_and_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    for _ in range(3):
        backend = SQLiteBackend(str(path))
        await backend.open()
        await backend.close()
    with sqlite3.connect(path) as db:
        versions = db.execute("SELECT version FROM queuekit_migrations").fetchall()
        mode = db.execute("PRAGMA journal_mode").fetchone()
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM queuekit_jobs WHERE queue = 'q' "
            "AND status IN ('pending', 'failed') AND scheduled_at <= 0 "
            "ORDER BY priority DESC, scheduled_at, seq LIMIT 5"
        ).fetchall()
    assert versions == [(version,) for version, _ in load_migrations("sqlite")]
    assert mode == ("wal",)
    assert any("queuekit_jobs_claim" in str(row) for row in plan), plan
    assert not any("TEMP B-TREE" in str(row) for row in plan), "the claim must not sort"


async def test_a_database_at_version_2_upgrades_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "jobs.db"
    await create_with(str(path), monkeypatch, lambda version: version <= 2)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO queuekit_jobs (id, queue, type, payload, priority, status,"
            " max_attempts, created_at, scheduled_at)"
            " VALUES ('old', 'default', 't', '[1]', 10, 'pending', 3, 0, 0)"
        )
    async with queuekit.connect(f"sqlite:///{path}") as queue:
        old = await queue.get_job("old")
        assert (old.payload, old.headers) == ([1], {})
        new = await queue.enqueue("t", headers={"k": "v"})
        claimed = await queue.backend.claim({"default": 2}, limit=2, lease=30, worker_id="w")
        assert [(job.id, job.headers) for job in claimed] == [("old", {}), (new.id, {"k": "v"})]
    with closing(sqlite3.connect(path)) as db:
        versions = db.execute("SELECT version FROM queuekit_migrations").fetchall()
    assert versions == [(version,) for version, _ in load_migrations("sqlite")]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///jobs.db", "jobs.db"),
        ("sqlite:////tmp/abs/jobs.db", "/tmp/abs/jobs.db"),
        ("sqlite:///with%20space.db", "with space.db"),
        ("sqlite://:memory:", ":memory:"),
    ],
)
def test_sqlite_urls(url: str, expected: str) -> None:
    assert SQLiteBackend.from_url(url).path == expected


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://host/jobs.db"])
def test_bad_sqlite_urls(url: str) -> None:
    with pytest.raises(InvalidURLError):
        queuekit.connect(url)


async def test_unopenable_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(queuekit.BackendUnavailableError):
        async with queuekit.connect(f"sqlite:///{tmp_path}/missing/dir/jobs.db"):
            pass


async def test_a_statement_the_database_refuses_is_not_an_unavailable_backend(
    tmp_path: Path,
) -> None:
    # Unavailable means "try again later" (a worker backs off and retries); a table dropped
    # under the backend will not come back by waiting, and must not be reported as if it would.
    path = tmp_path / "jobs.db"
    async with queuekit.connect(f"sqlite:///{path}") as queue:
        await queue.enqueue("t")
        with closing(sqlite3.connect(path)) as other:
            other.execute("DROP TABLE queuekit_jobs")
            other.commit()
        with pytest.raises(sqlite3.OperationalError, match="no such table") as raised:
            await queue.stats("default")
        assert not isinstance(raised.value, queuekit.BackendUnavailableError)


async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    path.write_bytes(b"not a database, but long enough to have a header " * 4)
    with pytest.raises(queuekit.BackendUnavailableError, match="not a database"):
        async with queuekit.connect(f"sqlite:///{path}"):
            pass


async def test_a_lease_starts_once_the_claim_holds_the_write_lock(tmp_path: Path) -> None:
    # Another connection holds the write lock for longer than the lease; the claim waits for it.
    # A lease timed from before that wait would be over before the claim even committed.
    path = tmp_path / "jobs.db"
    lease = 0.5
    async with queuekit.connect(f"sqlite:///{path}") as queue:
        backend = queue.backend
        assert isinstance(backend, SQLiteBackend)
        await queue.enqueue("t")
        with closing(sqlite3.connect(path, isolation_level=None)) as holder:
            holder.execute("BEGIN IMMEDIATE")
            claiming = asyncio.create_task(
                backend.claim({"default": 1}, limit=1, lease=lease, worker_id="w")
            )
            while not backend._lock.locked():  # the claim has started its statement
                await asyncio.sleep(0.01)
            await asyncio.sleep(2 * lease)
            assert not claiming.done()
            released_at = time.time()
            holder.execute("COMMIT")
        (job,) = await claiming
    assert job.started_at is not None and job.lease_expires_at is not None
    assert job.started_at.timestamp() >= released_at - 0.01
    assert job.lease_expires_at.timestamp() >= released_at + lease - 0.01
    async with queuekit.connect(f"sqlite:///{path}") as queue:
        assert (await queue.get_job(job.id)).lease_expires_at == job.lease_expires_at


@pytest.mark.parametrize(
    ("url", "level"),
    [
        ("sqlite:///jobs.db", 2),
        ("sqlite:///jobs.db?queuekit_synchronous=full", 2),
        ("sqlite:///jobs.db?queuekit_synchronous=normal", 1),
        ("sqlite:///jobs.db?queuekit_synchronous=NORMAL", 1),
    ],
)
async def test_synchronous_is_full_unless_the_url_says_normal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, level: int
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = SQLiteBackend.from_url(url)
    await backend.open()
    try:
        rows = list(await backend._connection().execute_fetchall("PRAGMA synchronous"))
    finally:
        await backend.close()
    assert rows[0][0] == level  # PRAGMA synchronous: 1 = NORMAL, 2 = FULL


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///jobs.db?queuekit_synchronous=off",
        "sqlite:///jobs.db?queuekit_synchronous=",
        "sqlite:///jobs.db?queuekit_sync=normal",
        "sqlite:///jobs.db?timeout=5",
        "sqlite://:memory:?queuekit_synchronous=extra",
    ],
)
def test_bad_sqlite_url_options(url: str) -> None:
    with pytest.raises(InvalidURLError):
        queuekit.connect(url)


async def test_prune_deletes_in_bounded_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_repairs, "DELETE_BATCH", 4)
    async with queuekit.connect(f"sqlite:///{tmp_path / 'jobs.db'}") as queue:
        jobs = await queue.enqueue_many(queuekit.new_job("t") for _ in range(10))
        for job in jobs:
            await queue.cancel(job.id)
        live = await queue.enqueue("t")
        statements: list[str] = []
        write = queue.backend._write  # type: ignore[attr-defined]

        async def counted(sql: str, params: dict[str, object]) -> object:
            statements.append(sql)
            return await write(sql, params)

        monkeypatch.setattr(queue.backend, "_write", counted)
        assert await queue.prune(older_than=0) == 10
        assert len(statements) == 3  # 4 + 4 + 2 rows
        assert [job.id for job in (await queue.list_jobs()).jobs] == [live.id]


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (" AND type = :type", "queuekit_jobs_type"),
        (" AND type = :type AND status = :status", "USING INDEX queuekit_jobs_"),
        (" AND queue = :queue AND status = :status", "queuekit_jobs_list"),
        (" AND status = :status", "queuekit_jobs_status"),
    ],
)
async def test_listing_uses_an_index_without_sorting(
    tmp_path: Path, filters: str, index: str
) -> None:
    path = tmp_path / "jobs.db"
    async with queuekit.connect(f"sqlite:///{path}"):
        pass
    sql = SQL["list"].replace("{filter}", filters)
    params = {"queue": "q", "status": "dead", "type": "t", "before": 10, "limit": 5}
    with closing(sqlite3.connect(path)) as db:
        plan = str(db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
    assert index in plan and "TEMP B-TREE" not in plan, plan


async def test_a_write_cancelled_midway_leaves_no_transaction_open(tmp_path: Path) -> None:
    """A worker's chores are cancelled at shutdown, perhaps inside a write transaction: the
    connection must come out of it (aiosqlite runs the BEGIN on in its thread regardless)."""
    backend = SQLiteBackend(str(tmp_path / "jobs.db"))
    await backend.open()
    try:
        for _ in range(20):
            with anyio.move_on_after(0):  # cancelled at its first await, inside the write
                await backend.add_activity([ActivityCounts("q", enqueued=1)], keep=3600)
            with anyio.move_on_after(0):
                await backend.beat_worker("w", "{}", ttl=30)
            await backend.enqueue(queuekit.new_job("t"))
    finally:
        await backend.close()


class ClaimsOnWake(SQLiteBackend):
    """A backend whose own worker claims a job the moment it is told of work: within the wake
    itself, which comes after an action's commit."""

    claimed: list[queuekit.Job]

    async def _notify_work(self) -> None:
        await super()._notify_work()
        self.claimed += await self.claim({"default": 1}, limit=1, lease=30, worker_id="w")


async def test_run_now_and_replay_return_the_job_as_their_transaction_left_it(
    tmp_path: Path,
) -> None:
    """Not as a read after the commit finds it: by then a worker may hold it, and a caller
    (the dashboard's bulk actions) would count the action as having changed nothing."""
    backend = ClaimsOnWake(str(tmp_path / "jobs.db"))
    backend.claimed = []
    await backend.open()
    try:
        later = await backend.enqueue(queuekit.new_job("t", delay=3600))
        made_due = await backend.run_now(later.id)
        assert made_due is not None and made_due.status == queuekit.JobStatus.PENDING
        cancelled = await backend.enqueue(queuekit.new_job("t", delay=3600))
        await backend.cancel(cancelled.id)
        replayed = await backend.replay(cancelled.id)
        assert replayed is not None and replayed.status == queuekit.JobStatus.PENDING
        assert [job.id for job in backend.claimed] == [later.id, cancelled.id]
    finally:
        await backend.close()

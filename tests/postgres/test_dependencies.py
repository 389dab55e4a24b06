"""PostgreSQL's dependencies (migration 15): the races of a parent ending while a child naming
it is enqueued, the cost of a parent's end in a large fan-in and for jobs outside workflows,
long cascades, deadlocks broken by the server, and enqueue on a caller's own transaction."""

from __future__ import annotations

import asyncio
import contextlib
import random

import asyncpg
import pytest

import queuekit
from queuekit import Job, JobStatus, Limits, OnFailure, Parent, UnknownParentError
from queuekit.backends.postgres import PostgresBackend
from queuekit.backends.postgres import migrations as postgres_migrations
from queuekit.backends.sqlfiles import load_migrations

from ..conformance.helpers import WORKER, claim
from ..waiting import eventually
from .conftest import OpenBackend
from .test_transactional import TRANSACTIONS, Rollback, Transaction

WOKEN = 30.0
"""Seconds a woken waiter may take on a busy machine; its own timeout is far longer."""


async def _running(backend: PostgresBackend, job: Job) -> Job:
    (running,) = await backend.claim({job.queue: 1}, limit=1, lease=60.0, worker_id=WORKER)
    assert running.id == job.id
    return running


async def _status(backend: PostgresBackend, job_id: str) -> JobStatus:
    read = await backend.get_job(job_id)
    assert read is not None
    return read.status


async def _blocked(conn: asyncpg.Connection, schema: str) -> bool:
    """Whether another session's statement on `schema` waits for a lock."""
    # Inside a transaction the activity view is read once and kept: read it afresh.
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    return bool(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND wait_event_type = 'Lock' AND strpos(query, $1) > 0",
            f'"{schema}"',
        )
    )


async def _table_reads(conn: asyncpg.Connection, schema: str) -> dict[str, int]:
    """Rows this transaction has read so far from each table of `schema`, by name (those of
    sequential scans under `<name>:seq`): `pg_stat_xact_user_tables` counts the open
    transaction alone."""
    rows = await conn.fetch(
        "SELECT relname, seq_tup_read + seq_scan AS seq, coalesce(idx_tup_fetch, 0) AS idx "
        "FROM pg_stat_xact_user_tables WHERE schemaname = $1",
        schema,
    )
    reads = {row["relname"]: row["idx"] for row in rows}
    reads.update({f"{row['relname']}:seq": row["seq"] for row in rows})
    return reads


async def test_a_child_enqueued_while_its_parent_ends_never_waits_forever(
    open_backend: OpenBackend,
) -> None:
    """Two clients race, many times: one ends the parent (complete or die), the other
    enqueues a child naming it. Whichever commits first, the child ends up decided."""
    finisher, producer = await open_backend(), await open_backend()
    queue = queuekit.Queue(producer)
    rng = random.Random(18)
    for round_ in range(60):
        parent = await queue.enqueue("t", round_, max_attempts=1, queue="parents")
        running = await _running(finisher, parent)
        dies = rng.random() < 0.5
        end = (
            finisher.fail(running.attempt, "boom", retry_in=None)
            if dies
            else finisher.complete(running.attempt)
        )
        _, child = await asyncio.gather(end, queue.enqueue("t", after=[parent], queue="kids"))
        expected = JobStatus.CANCELLED if dies else JobStatus.PENDING
        assert await _status(producer, child.id) == expected, f"round {round_}"
    assert (await queue.stats()).waiting == 0


async def test_a_child_enqueued_while_its_parent_is_ending_sees_it_ended(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    """The parent's end is written first and holds its row: the enqueue waits for it, then
    sees the parent completed and stores the child pending."""
    queue = queuekit.Queue(pg_backend)
    parent = await queue.enqueue("t")
    await _running(pg_backend, parent)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                f"UPDATE {pg_backend.qualified_table} SET status = 'completed', "
                "finished_at = now(), lease_expires_at = NULL WHERE id = $1",
                parent.id,
            )
            enqueue = asyncio.create_task(queue.enqueue("t", after=[parent]))
            await eventually(lambda: _blocked(conn, pg_backend.schema), "the enqueue waits")
        child = await asyncio.wait_for(enqueue, WOKEN)
    finally:
        await conn.close()
    assert child.status == JobStatus.PENDING
    assert await _status(pg_backend, child.id) == JobStatus.PENDING


async def test_a_parent_ending_while_its_child_is_enqueued_finds_the_child(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    """The child's enqueue comes first and holds the parent's row until it commits: the
    parent's end waits for it, then its trigger finds the child's edge and releases it."""
    queue = queuekit.Queue(pg_backend)
    parent = await queue.enqueue("t")
    running = await _running(pg_backend, parent)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            child = await queue.enqueue("t", after=[parent], connection=conn)
            assert child.status == JobStatus.WAITING
            completing = asyncio.create_task(pg_backend.complete(running.attempt))
            await eventually(lambda: _blocked(conn, pg_backend.schema), "the finish waits")
        assert await asyncio.wait_for(completing, WOKEN) == JobStatus.COMPLETED
    finally:
        await conn.close()
    assert await _status(pg_backend, child.id) == JobStatus.PENDING


async def test_a_fan_in_of_10000_parents_costs_each_end_one_edge(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    """Ending one of 10,000 parents reads its own edge, not the child's 10,000: the count of
    unfinished parents is kept on the child, and the child's parents on its row. Then every
    parent completes, and the child runs."""
    queue = queuekit.Queue(pg_backend)
    parents = [queuekit.new_job("t", n) for n in range(10_000)]
    child = queuekit.new_job("t", "join", after=parents)
    await queue.enqueue_many([*parents, child])
    running = await claim(pg_backend, 10_000)
    assert len(running) == 10_000
    schema, table = pg_backend.schema, pg_backend.table
    conn = await asyncpg.connect(dsn)
    try:
        tr = conn.transaction()
        await tr.start()
        before = await _table_reads(conn, schema)
        await conn.execute(
            f"UPDATE {pg_backend.qualified_table} SET status = 'completed', finished_at = now(), "
            "lease_expires_at = NULL WHERE id = $1",
            running[0].id,
        )
        after = await _table_reads(conn, schema)
        await tr.rollback()
    finally:
        await conn.close()
    read = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    assert read[f"{table}_parents:seq"] == 0 and read[f"{table}:seq"] == 0, read
    # The ending parent's one edge, of 10,000, is on its own row (all were enqueued in one call).
    assert read[f"{table}_parents"] == 0, read
    # The parent, twice (to update it, to read its edge), and the child, twice (to check that it
    # is the job of that call, to count).
    assert read[table] <= 4, read
    results = await asyncio.gather(*(pg_backend.complete(job.attempt) for job in running[:-1]))
    assert set(results) == {JobStatus.COMPLETED}
    assert await _status(pg_backend, child.id) == JobStatus.WAITING
    assert await pg_backend.complete(running[-1].attempt) == JobStatus.COMPLETED
    assert await _status(pg_backend, child.id) == JobStatus.PENDING


async def test_jobs_outside_workflows_never_reach_the_triggers(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    """Completing, cancelling, replaying and deleting ordinary jobs reads nothing of the
    edges (the triggers' WHEN leaves those rows out); the same for a parent reads them."""
    queue = queuekit.Queue(pg_backend)
    table = pg_backend.table
    plain = [await queue.enqueue("t", n) for n in range(3)]
    parent = await queue.enqueue("t", "parent")
    await queue.enqueue("t", after=[parent])
    conn = await asyncpg.connect(dsn)
    try:
        for ids in ([job.id for job in plain], [parent.id]):
            tr = conn.transaction()
            await tr.start()
            before = await _table_reads(conn, pg_backend.schema)
            jobs = pg_backend.qualified_table
            await conn.execute(
                f"UPDATE {jobs} SET status = 'cancelled', finished_at = now() WHERE id = ANY($1)",
                ids,
            )
            await conn.execute(
                f"UPDATE {jobs} SET status = 'pending', finished_at = NULL WHERE id = ANY($1)",
                ids,
            )
            await conn.execute(f"DELETE FROM {jobs} WHERE id = ANY($1)", ids)
            after = await _table_reads(conn, pg_backend.schema)
            await tr.rollback()
            edges_read = sum(
                after.get(name, 0) - before.get(name, 0)
                for name in (f"{table}_parents", f"{table}_parents:seq")
            )
            assert (edges_read == 0) == (ids != [parent.id]), (ids, edges_read)
    finally:
        await conn.close()


async def test_a_long_chain_is_cancelled_and_brought_back_in_one_statement(
    pg_backend: PostgresBackend,
) -> None:
    """A cascade is a loop, not a recursion of triggers: 3,000 levels fit in any stack."""
    queue = queuekit.Queue(pg_backend)
    chain: list[queuekit.NewJob] = [queuekit.new_job("t", 0, max_attempts=1)]
    for n in range(1, 3_000):
        chain.append(queuekit.new_job("t", n, after=[chain[-1]]))
    await queue.enqueue_many(chain)
    head = await _running(pg_backend, await queue.get_job(chain[0].id))
    assert await pg_backend.fail(head.attempt, "boom", retry_in=None) == JobStatus.DEAD
    tail = await queue.get_job(chain[-1].id)
    assert tail.status == JobStatus.CANCELLED
    assert tail.last_error == f"parent {chain[-2].id} cancelled"
    assert (await queue.stats()).cancelled == 2_999
    await queue.replay(chain[0].id)
    stats = await queue.stats()
    assert (stats.pending, stats.waiting, stats.cancelled) == (1, 2_999, 0)


async def test_the_trigger_sends_wake_ups_and_outcomes(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    """A released job wakes its queue's workers on every host, and a job cancelled by its
    parent tells those waiting for its outcome, as an enqueue and a cancel would."""
    queue = queuekit.Queue(pg_backend)
    heard: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        await conn.add_listener(pg_backend.channel, lambda *args: heard.append(args[-1]))
        parent = await queue.enqueue("t", queue="first", max_attempts=1)
        released = await queue.enqueue(
            "t", queue="second", after=[Parent(parent.id, OnFailure.RUN)]
        )
        cancelled = await queue.enqueue("t", queue="third", after=[parent])
        running = await _running(pg_backend, parent)
        heard.clear()
        assert await pg_backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
        await eventually(lambda: "w:second" in heard, "the released job's queue is woken")
        await eventually(lambda: f"o:{cancelled.id}" in heard, "the cancelled job's outcome")
        assert not any(payload.startswith(("w:third", "c:")) for payload in heard), heard
    finally:
        await conn.close()
    (claimed,) = await claim(pg_backend, queue="second")
    assert claimed.id == released.id


async def test_a_finish_chosen_to_break_a_deadlock_runs_again(
    pg_backend: PostgresBackend, dsn: str
) -> None:
    """Another transaction holds the waiting child, then waits for the parent the finish
    holds: the server rolls back the finish (it waited first, and the other one waits longer
    before looking for deadlocks), and the backend runs it again."""
    queue = queuekit.Queue(pg_backend)
    parent = await queue.enqueue("t")
    child = await queue.enqueue("t", after=[parent])
    running = await _running(pg_backend, parent)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            try:
                await conn.execute("SET LOCAL deadlock_timeout = '60s'")
            except asyncpg.InsufficientPrivilegeError:
                pytest.skip("setting deadlock_timeout takes a superuser")
            jobs = pg_backend.qualified_table
            await conn.execute(f"SELECT 1 FROM {jobs} WHERE id = $1 FOR UPDATE", child.id)
            completing = asyncio.create_task(pg_backend.complete(running.attempt))
            await eventually(lambda: _blocked(conn, pg_backend.schema), "the finish waits")
            # Waits for the finish, which waits for this transaction: the finish is rolled back.
            await asyncio.wait_for(
                conn.execute(f"SELECT 1 FROM {jobs} WHERE id = $1 FOR UPDATE", parent.id), WOKEN
            )
    finally:
        await conn.close()
    assert await asyncio.wait_for(completing, WOKEN) == JobStatus.COMPLETED
    assert await _status(pg_backend, child.id) == JobStatus.PENDING


@TRANSACTIONS
async def test_parents_on_the_callers_transaction(
    pg_backend: PostgresBackend, dsn: str, transaction: Transaction
) -> None:
    """A workflow enqueued on a caller's connection is stored whole at the commit; a call
    naming an unknown parent stores nothing and leaves the transaction usable."""
    queue = queuekit.Queue(pg_backend)
    stored_parent = await queue.enqueue("t", max_attempts=1)
    await pg_backend.fail((await _running(pg_backend, stored_parent)).attempt, "x", retry_in=None)
    async with transaction(dsn) as conn:
        root = queuekit.new_job("t")
        runs = queuekit.new_job("t", after=[root, Parent(stored_parent.id, OnFailure.RUN)])
        cancelled = queuekit.new_job("t", after=[stored_parent])
        stored = await queue.enqueue_many([root, runs, cancelled], connection=conn)
        assert [job.status for job in stored] == [
            JobStatus.PENDING,
            JobStatus.WAITING,
            JobStatus.CANCELLED,
        ]
        with pytest.raises(UnknownParentError):
            await queue.enqueue_many(
                [queuekit.new_job("t", id="kept-out"), queuekit.new_job("t", after=["nope"])],
                connection=conn,
            )
        late = await queue.enqueue("t", after=[runs], connection=conn)
    assert await pg_backend.get_job("kept-out") is None
    read = await pg_backend.get_job(runs.id)
    assert read is not None and read.dependents == (late.id,)
    assert read.parents == (Parent(root.id), Parent(stored_parent.id, OnFailure.RUN))
    with contextlib.suppress(Rollback):
        async with transaction(dsn) as conn:
            await queue.enqueue("t", id="rolled-back", after=[root], connection=conn)
            raise Rollback
    assert (await pg_backend.get_job(root.id)).dependents == (runs.id,)  # type: ignore[union-attr]


async def test_a_released_job_is_claimed_under_its_queues_limits(
    pg_backend: PostgresBackend,
) -> None:
    """A limited claim forgets the turn of a key with no claimable or running job, a waiting
    one's included; its release gives the key its turn back."""
    queue = queuekit.Queue(pg_backend)
    await queue.set_limits("limited", Limits(concurrency=2, per_key=1))
    parent = await queue.enqueue("t", queue="first")
    child = await queue.enqueue("t", queue="limited", limit_key="k2", after=[parent])
    other = await queue.enqueue("t", queue="limited", limit_key="k1")
    assert [job.id for job in await claim(pg_backend, 2, queue="limited")] == [other.id]
    running = await _running(pg_backend, parent)
    assert await pg_backend.complete(running.attempt) == JobStatus.COMPLETED
    assert [job.id for job in await claim(pg_backend, 2, queue="limited")] == [child.id]


async def test_a_parent_answered_by_its_unique_keys_holder_is_unknown(
    pg_backend: PostgresBackend,
) -> None:
    """The parent named was not stored (the holder of its key answered for it): nothing of
    the call is stored. Without a later job naming it, the call goes through."""
    queue = queuekit.Queue(pg_backend)
    holder = await queue.enqueue("t", unique_key="once")
    answered = queuekit.new_job("t", unique_key="once")
    first = queuekit.new_job("t")
    child = queuekit.new_job("t", after=[first, answered])
    with pytest.raises(UnknownParentError) as raised:
        await queue.enqueue_many([first, answered, child])
    assert raised.value.job_id == answered.id
    assert [job.id for job in (await queue.list_jobs()).jobs] == [holder.id]
    stored = await queue.enqueue_many([first, answered, queuekit.new_job("t", after=[first])])
    assert [job.id for job in stored][:2] == [first.id, holder.id]
    assert stored[2].status == JobStatus.WAITING


async def test_a_waiting_job_expires_only_once_released(pg_backend: PostgresBackend) -> None:
    """`expire` leaves a waiting job alone, however late; released, it expires (and its own
    dependents are decided by that cancel)."""
    queue = queuekit.Queue(pg_backend)
    parent = await queue.enqueue("t", queue="first")
    late = await queue.enqueue("t", queue="second", after=[parent], expires_in=0.001)
    grandchild = await queue.enqueue("t", queue="second", after=[late])
    await eventually(lambda: _expired(pg_backend, late.id), "the waiting job's expiry passes")
    assert await pg_backend.expire() == 0
    assert await _status(pg_backend, late.id) == JobStatus.WAITING
    running = await _running(pg_backend, parent)
    assert await pg_backend.complete(running.attempt) == JobStatus.COMPLETED
    assert await pg_backend.expire() == 1
    read = await pg_backend.get_job(late.id)
    assert read is not None and (read.status, read.last_error) == (JobStatus.CANCELLED, "expired")
    assert await _status(pg_backend, grandchild.id) == JobStatus.CANCELLED


async def _expired(backend: PostgresBackend, job_id: str) -> bool:
    """Whether the job's `expires_at` has passed by the server's clock."""
    pool = backend._require_pool()
    return bool(
        await pool.fetchval(
            f"SELECT expires_at <= now() FROM {backend.qualified_table} WHERE id = $1", job_id
        )
    )


async def test_a_finish_batch_decides_its_ended_parents_in_one_call(
    open_backend: OpenBackend, dsn: str
) -> None:
    """The parents of one join that end in one finish batch count down its open parents by
    their number in the batch's one statement (which decides them in one call of
    `<table>_parents_end`, not one per parent through the trigger); the setting that keeps
    the trigger aside ends with the batch's own transaction, so a later end on the same
    pooled connection still decides its dependents."""
    # One connection: what the batch set on it would be there for the next statement.
    backend = await open_backend(pool_min="1", pool_max="1")
    queue = queuekit.Queue(backend)
    parents = [queuekit.new_job("t", n) for n in range(5)]
    join = queuekit.new_job("t", "join", after=parents)
    last = queuekit.new_job("t", "last")
    after_last = queuekit.new_job("t", "after last", after=[last])
    await queue.enqueue_many([*parents, join, last, after_last])
    running = await claim(backend, 6)
    by_id = {job.id: job for job in running}
    conn = await asyncpg.connect(dsn)
    try:
        batches_before = backend.finish_batches
        # Made in one turn of the event loop: one batch, one statement.
        ended = await asyncio.gather(
            *(backend.complete(by_id[job.id].attempt) for job in parents[:4])
        )
        assert set(ended) == {JobStatus.COMPLETED}
        assert backend.finish_batches == batches_before + 1
        (row,) = await conn.fetch(
            f"SELECT status, open_parents FROM {backend.qualified_table} WHERE id = $1", join.id
        )
        assert (row["status"], row["open_parents"]) == ("waiting", 1)
    finally:
        await conn.close()
    # The same (only) connection: a single end through the trigger still decides.
    assert await backend.cancel(last.id) is not None
    assert await _status(backend, after_last.id) == JobStatus.CANCELLED
    assert await backend.complete(by_id[parents[4].id].attempt) == JobStatus.COMPLETED
    assert await _status(backend, join.id) == JobStatus.PENDING


async def test_edges_stored_as_rows_before_version_19_still_decide_their_dependents(
    open_backend: OpenBackend, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to version 18 every edge was a row of the parents table; version 19 keeps a call's
    edges on its jobs' rows. A schema upgraded with a waiting child lists its parents and
    dependents as before, and the parent's end still releases the child."""
    version_18 = [(v, script) for v, script in load_migrations("postgres") if v <= 18]
    monkeypatch.setattr(postgres_migrations, "load_migrations", lambda dialect: version_18)
    old_client = await open_backend()
    monkeypatch.undo()
    parent = await queuekit.Queue(old_client).enqueue("t")
    # A child as version 18's enqueue stored it (today's statement for it needs version 19).
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f"INSERT INTO {old_client.qualified_table} (id, queue, type, payload, priority, "
            "status, max_attempts, created_at, scheduled_at, open_parents, has_parents) "
            "VALUES ('child', 'default', 't', 'null', 0, 'waiting', 3, now(), now(), 1, true)"
        )
        await conn.execute(
            f'INSERT INTO "{old_client.schema}"."{old_client.table}_parents" '
            "(child_id, position, parent_id, on_failure) VALUES ('child', 0, $1, 'cancel')",
            parent.id,
        )
        await conn.execute(
            f"UPDATE {old_client.qualified_table} SET has_dependents = true WHERE id = $1",
            parent.id,
        )
    finally:
        await conn.close()

    upgraded = await open_backend()
    child = await upgraded.get_job("child")
    assert child is not None and child.status == JobStatus.WAITING
    assert child.parents == (Parent(parent.id, OnFailure.CANCEL),)
    stored_parent = await upgraded.get_job(parent.id)
    assert stored_parent is not None and stored_parent.dependents == ("child",)
    running = await _running(upgraded, parent)
    assert await upgraded.complete(running.attempt) == JobStatus.COMPLETED
    assert await _status(upgraded, "child") == JobStatus.PENDING

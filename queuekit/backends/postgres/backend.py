"""`PostgresBackend`: jobs in one PostgreSQL table, claimed with SKIP LOCKED, woken by NOTIFY.

- Every statement is one round trip and computes time with the server's `now()`.
- `complete`, `fail` and `snooze` calls are buffered and written together, one statement per
  batch, each row fenced by its claim's lease token; each caller learns its own row's outcome
  once the batch has committed.
- Idle waiters share one LISTEN connection per backend (listener.py), which reconnects by
  itself; with `poll_only` they poll instead. Behind PgBouncer (`pgbouncer=`) see pgbouncer.py.
- A queue with limits is claimed in a transaction of its own that applies them (limited.py).

See docs/postgres.md for URL options, the schema and operating advice.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Self

import asyncpg
import asyncpg.pool

from ...backend import FencedBackend, Rescued, TransactionalBackend, new_lease_token
from ...errors import (
    InvalidConnectionError,
    InvalidNameError,
    InvalidOptionError,
    InvalidPayloadError,
)
from ...job import TERMINAL_STATUSES, Attempt, Job, JobStatus, NewJob
from ...progress import NO_UPDATE, ProgressUpdate
from ...validation import check_identifier
from ..batching import BatchedFinishes, Finish, FinishBatcher
from ..losses import CancelsHere, LossWaiters
from ..rows import job_from_row
from ..url_options import options_of_url
from ..waiters import wait_at_most
from .activity import ActivityLog
from .callers import caller_connection
from .cancels import PushedCancels
from .connections import Connection, Pool, close_pool, open_pool
from .copies import copy_in, copyable
from .debouncer import Debouncer
from .events import PostgresEvents
from .expiry import Expiry
from .inserts import insert, links_of
from .limited import LimitedClaims
from .listener import READY_WAIT, Listener
from .migrations import apply_migrations
from .options import describe, parse_url
from .pgbouncer import POOL_MODES
from .repairs import Repairs
from .table import DEADLOCK_RETRIES
from .workers import Workers

MAX_TABLE_NAME_LENGTH = 50
"""Leaves room for the suffixes of the index and migration-table names (63 bytes in all)."""
OUTCOME_RECHECK_SECONDS = 5.0
"""A job's outcome is re-read this often even without a notification (belt and braces)."""
POLL_ONLY_OUTCOME_SECONDS = 0.1
"""How often `wait_for_outcome` looks in poll-only mode."""


class PostgresBackend(
    PostgresEvents,
    BatchedFinishes,
    PushedCancels,
    Repairs,
    Workers,
    ActivityLog,
    Expiry,
    LimitedClaims,
    TransactionalBackend,
    FencedBackend,
):
    """Jobs in one PostgreSQL table (asyncpg), following DESIGN.md.

    Give either a `dsn` (`postgresql://user@host:5432/db`; the backend owns its pool) or an
    existing asyncpg `pool` (the caller keeps owning it; the LISTEN connection is then taken
    from it). `schema` and `table` name where the jobs live; both are validated identifiers.
    `pgbouncer` names the pool mode of a PgBouncer the DSN goes through; `listen_dsn`, a
    direct DSN for the LISTEN connection alone (see docs/postgres.md).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: Pool | None = None,
        schema: str = "public",
        table: str = "queuekit_jobs",
        min_pool_size: int = 1,
        max_pool_size: int = 10,
        poll_only: bool = False,
        migrate: bool = True,
        notify_cooldown: float = 0.005,
        batch_window: float = 0.0,
        batch_max: int = 1000,
        connect_timeout: float = 10.0,
        statement_cache_size: int | None = None,
        prune_batch_size: int = 10_000,
        pgbouncer: str | None = None,
        listen_dsn: str | None = None,
    ) -> None:
        if (dsn is None) == (pool is None):
            raise InvalidOptionError("PostgresBackend takes a dsn or a pool (one of the two)")
        check_identifier(schema, "schema name")
        check_identifier(table, "table name")
        if len(table) > MAX_TABLE_NAME_LENGTH:
            raise InvalidNameError(
                f"invalid table name {table!r}: at most {MAX_TABLE_NAME_LENGTH} characters"
            )
        if not 1 <= min_pool_size <= max_pool_size:
            raise InvalidOptionError("pool sizes must satisfy 1 <= min_pool_size <= max_pool_size")
        if batch_max < 1 or prune_batch_size < 1:
            raise InvalidOptionError("batch_max and prune_batch_size must be at least 1")
        if pgbouncer not in (None, *POOL_MODES):
            raise InvalidOptionError(
                f"pgbouncer={pgbouncer!r}: PgBouncer's pool mode, {' or '.join(POOL_MODES)}"
            )
        transaction_pooled = pgbouncer == "transaction"
        if statement_cache_size is None:
            # PgBouncer before 1.21 (Debian 12 has 1.18) loses named prepared statements
            # between transactions; with 0, asyncpg sends each statement unnamed.
            statement_cache_size = 0 if transaction_pooled else 100
        for name, value in (
            ("notify_cooldown", notify_cooldown),
            ("batch_window", batch_window),
            ("connect_timeout", connect_timeout),
        ):
            if not math.isfinite(value) or value < 0:
                raise InvalidOptionError(f"{name} must be finite and >= 0, got {value!r}")
        where = describe(dsn) if dsn is not None else "the given pool"
        super().__init__(schema, table, where=where, transaction_pooled=transaction_pooled)
        self._dsn = dsn
        self._given_pool = pool
        # A LISTEN through a transaction-mode PgBouncer hears nothing: poll unless a direct
        # connection is given for it.
        self.poll_only = poll_only or (transaction_pooled and listen_dsn is None)
        self._min_pool_size = min_pool_size
        self._max_pool_size = max_pool_size
        self._migrate_on_open = migrate
        self._connect_timeout = connect_timeout
        self._statement_cache_size = statement_cache_size
        self.pgbouncer = pgbouncer
        self._listen_dsn = listen_dsn
        self._prune_batch_size = prune_batch_size
        self._batch_window = batch_window
        self._batch_max = batch_max
        self._batcher = self._new_batcher()
        self._debouncer = Debouncer(notify_cooldown, self._notify_work)
        self._database: str | None = None
        """The database the pool connects to, asked once, to check callers' connections."""
        self._loss_waiters = LossWaiters()
        self._cancels = CancelsHere(self._loss_waiters)
        self._listener = (
            None
            if self.poll_only
            else Listener(
                self.channel,
                self._where,
                self._listener_connect,
                self._listener_release,
                self._work_waiters,
                self._outcome_waiters,
                self._loss_waiters,
            )
        )

    @classmethod
    def from_url(cls, url: str) -> Self:
        """`postgresql://user:password@host:5432/db?queuekit_schema=jobs&...`.

        `queuekit_*` query options configure the backend (see docs/postgres.md) and are
        removed; everything else goes to asyncpg as it is.
        """
        dsn, options = parse_url(url)
        with options_of_url("PostgreSQL"):
            return cls(dsn, **options)

    @property
    def listener_connections(self) -> int:
        """How many times the LISTEN connection has been (re)established."""
        return 0 if self._listener is None else self._listener.connections

    # Connections

    def _new_batcher(self) -> FinishBatcher:
        return FinishBatcher(
            self._write_finishes, window=self._batch_window, max_size=self._batch_max
        )

    async def open(self) -> None:
        if self._listener is not None:
            self._listener.enable()
        if self._batcher.closed:
            self._batcher = self._new_batcher()
        if self._pool is not None:
            return
        if self._given_pool is not None:
            self._pool = self._given_pool
        else:
            self._pool = await open_pool(
                self._dsn,
                min_size=self._min_pool_size,
                max_size=self._max_pool_size,
                timeout=self._connect_timeout,
                statement_cache_size=self._statement_cache_size,
                pgbouncer=self.pgbouncer,
                where=self._where,
            )
        if self._migrate_on_open:
            try:
                await self.migrate()
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        """Flush buffered completions and trailing wake-ups, stop listening, close the pool."""
        if self._pool is None:
            return
        if self._listener is not None:
            self._listener.disable()
        try:
            await self._batcher.close()
            await self._debouncer.close()
        finally:
            await self._stop_events()
            if self._listener is not None:
                await self._listener.close()
            # Every waiter looks again, and finds the backend closed.
            self._work_waiters.wake_all()
            self._outcome_waiters.wake_all()
            pool, self._pool = self._pool, None
            if pool is not self._given_pool:
                await close_pool(pool)

    async def migrate(self) -> list[int]:
        """Create or upgrade the schema; return the versions applied by this call (see
        migrations.py: safe to run from many processes at once)."""
        pool = self._require_pool()
        with self._guard():
            return await apply_migrations(pool, self._statements, self.schema, self.table)

    # Producing

    async def enqueue(self, job: NewJob) -> Job:
        return (await self.enqueue_many([job]))[0]

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        pool = self._require_pool()
        queues = sorted({job.queue for job in jobs})
        notify = self._debouncer.take(queues)
        try:
            with self._guard():
                async with pool.acquire() as conn:
                    stored = await self._insert(conn, jobs, notify)
        except BaseException:
            self._debouncer.unsent(notify)  # it may have been carrying wake-ups owed before
            raise
        self._work_waiters.wake(queues)
        return stored

    async def _insert(
        self, conn: Connection, jobs: Sequence[NewJob], notify: Sequence[str]
    ) -> list[Job]:
        """`insert`, in a transaction of its own when it takes several statements, run again
        if the server broke a deadlock by rolling it back (its parents' locks against a
        concurrent finish's dependents, or its keys against a replay's)."""
        for _ in range(DEADLOCK_RETRIES):
            with contextlib.suppress(asyncpg.DeadlockDetectedError):
                return await self._insert_once(conn, jobs, notify)
        return await self._insert_once(conn, jobs, notify)

    async def _insert_once(
        self, conn: Connection, jobs: Sequence[NewJob], notify: Sequence[str]
    ) -> list[Job]:
        links = links_of(jobs)
        if copyable(jobs, links):
            where = (self.schema, self.table)
            return await copy_in(conn, self._sql, where, self.channel, jobs, notify)
        if links.one_statement:
            return await insert(conn, self._sql, self.channel, jobs, notify, links)
        async with conn.transaction():
            return await insert(conn, self._sql, self.channel, jobs, notify, links)

    async def enqueue_in_transaction(self, connection: object, jobs: Sequence[NewJob]) -> list[Job]:
        """Enqueue on the caller's connection (see callers.py), inside its open transaction.

        The jobs (and their wake-up) exist only if that transaction commits. Nothing is
        debounced here: a wake-up sent outside the transaction could arrive before the commit.
        """
        pool = self._require_pool()
        identity = self._sql["connection_identity"]
        with self._guard():
            if self._database is None:
                self._database = str(await pool.fetchval(identity))
            driver = await caller_connection(connection, identity, self._database)
            if not jobs:
                return []
            queues = sorted({job.queue for job in jobs})
            links = links_of(jobs)
            return await insert(
                driver, self._sql, self.channel, jobs, queues, links, savepoint=True
            )

    @contextlib.asynccontextmanager
    async def transaction(self, connection: object) -> AsyncIterator[None]:
        """A transaction on the caller's asyncpg connection, for `JobContext.transaction`."""
        if not isinstance(connection, asyncpg.Connection | asyncpg.pool.PoolConnectionProxy):
            raise InvalidConnectionError(
                "transaction() takes an asyncpg connection (or a pool's), "
                f"not {type(connection).__name__}"
            )
        if connection.is_in_transaction():
            # A savepoint would let the completion be rolled back after the block reported it.
            raise InvalidConnectionError(
                "transaction() opens its own transaction: the connection is in one already"
            )
        self._require_pool()
        # Unguarded: errors on the caller's connection are theirs, as they are in the block.
        async with connection.transaction():
            yield

    async def complete_in_transaction(
        self, connection: object, attempt: Attempt, result_json: str | None
    ) -> bool:
        assert isinstance(connection, asyncpg.Connection | asyncpg.pool.PoolConnectionProxy)
        with self._guard():
            row = await connection.fetchrow(
                self._sql["complete_in_transaction"],
                attempt.job_id,
                attempt.token,
                result_json,
                self.channel,
            )
        return row is not None

    async def _notify_work(self, queue: str) -> None:
        await self._execute("notify", self.channel, f"w:{queue}")

    # Consuming

    async def claim(
        self, slots: Mapping[str, int], *, limit: int, lease: float, worker_id: str
    ) -> list[Job]:
        lanes = [(queue, count) for queue, count in slots.items() if count > 0]
        if not lanes or limit <= 0:
            return []
        limited = await self._limited_queues()
        token = new_lease_token()
        # The claim statement skips queues with limits whatever `limited` says; they are
        # claimed after the others, each in a transaction of its own.
        unlimited = [(queue, count) for queue, count in lanes if queue not in limited]
        claimed = await self._claim_unlimited(unlimited, limit, lease, worker_id, token)
        for queue, count in lanes:
            free = min(count, limit - len(claimed))
            if queue not in limited or free <= 0:
                continue
            jobs = await self._claim_limited(
                queue, free, lease=lease, worker_id=worker_id, token=token
            )
            if jobs is None:  # its limits were removed meanwhile
                jobs = await self._claim_unlimited([(queue, free)], free, lease, worker_id, token)
            claimed.extend(jobs)
        return claimed

    async def _claim_unlimited(
        self, lanes: Sequence[tuple[str, int]], limit: int, lease: float, worker_id: str, token: str
    ) -> list[Job]:
        """The claim statement on `lanes` (queues with limits are skipped by it)."""
        if not lanes:
            return []
        rows = await self._fetch(
            "claim",
            [queue for queue, _ in lanes],
            [count for _, count in lanes],
            limit,
            lease,
            worker_id,
            token,
        )
        return [job_from_row(row) for row in rows]

    async def heartbeat(
        self,
        attempts: Sequence[Attempt],
        *,
        lease: float,
        progress: Mapping[Attempt, ProgressUpdate] | None = None,
    ) -> set[Attempt]:
        if not attempts:
            return set()
        updates = [(progress or {}).get(attempt, NO_UPDATE) for attempt in attempts]
        rows = await self._fetch(
            "heartbeat",
            [attempt.job_id for attempt in attempts],
            [attempt.token for attempt in attempts],
            lease,
            [update.fraction for update in updates],
            [update.note for update in updates],
            [update.output_json for update in updates],
        )
        held = {(row["id"], row["lease_token"]) for row in rows}
        return {attempt for attempt in attempts if (attempt.job_id, attempt.token) not in held}

    @property
    def finish_batches(self) -> int:
        """How many statements have written `complete`/`fail`/`snooze` calls so far."""
        return self._batcher.batches

    async def _write_finishes(self, batch: list[Finish]) -> None:
        """Write one batch in one statement and settle each caller's future."""
        try:
            rows = await self._fetch(
                "finish",
                [op.attempt.job_id for op in batch],
                [op.attempt.token for op in batch],
                [op.kind for op in batch],
                [op.result for op in batch],
                [op.error for op in batch],
                [op.seconds for op in batch],
                self.channel,
            )
        except asyncpg.DataError as exc:
            # The batcher writes the batch's other calls without the one refused (FinishBatcher).
            raise InvalidPayloadError(f"PostgreSQL refused a result: {exc}") from exc
        outcomes = {(row["id"], row["lease_token"]): row for row in rows}
        work: set[str] = set()
        freed: set[str] = set()
        finished: list[str] = []
        for op in batch:
            row = outcomes.get((op.attempt.job_id, op.attempt.token))
            if not op.future.done():
                op.future.set_result(None if row is None else row["status"])
            if row is not None:
                if row["status"] in (JobStatus.PENDING, JobStatus.FAILED):
                    work.add(row["queue"])
                else:
                    finished.append(row["id"])
                    freed.add(row["queue"])
        self._work_waiters.wake(work)
        self._wake_freed(freed)
        self._outcome_waiters.wake(finished)

    async def rescue(self) -> Rescued:
        await self.fold_counts(age=True)  # the upkeep each worker does now and then
        rows = await self._fetch("rescue", self.channel)
        self._work_waiters.wake({row["queue"] for row in rows if row["status"] == JobStatus.FAILED})
        self._wake_freed({row["queue"] for row in rows})
        dead = [row["id"] for row in rows if row["status"] == JobStatus.DEAD]
        self._outcome_waiters.wake(dead)
        return Rescued(failed=len(rows) - len(dead), dead=len(dead))

    # Waiting

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if timeout <= 0 or not queues:
            await asyncio.sleep(max(0.0, timeout) if math.isfinite(timeout) else 0)
            return
        await self._listen(min(timeout, READY_WAIT))
        with self._work_waiters.registered(queues) as event:
            # After registering (and listening): anything committed from here on wakes us, and
            # anything committed before is seen by this query.
            rows = await self._fetch("next_due", list(queues))
            due = rows[0]["seconds"] if rows else None
            if due is not None:
                # A millisecond late rather than early, so the claim that follows finds it.
                deadline = min(deadline, loop.time() + max(0.0, due) + 0.001)
            await wait_at_most(event, deadline - loop.time())

    async def wait_for_outcome(self, job_id: str, timeout: float) -> Job | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self._listen(min(timeout, READY_WAIT))
        recheck = POLL_ONLY_OUTCOME_SECONDS if self.poll_only else OUTCOME_RECHECK_SECONDS
        with self._outcome_waiters.registered([job_id]) as event:
            while True:
                event.clear()
                job = await self.get_job(job_id)
                if job is None or job.status in TERMINAL_STATUSES:
                    return job
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                await wait_at_most(event, min(remaining, recheck))

    async def _listen(self, wait: float) -> None:
        """Have the LISTEN connection up (unless polling), waiting at most `wait` s for it."""
        if self._listener is not None:
            await self._listener.ensure(wait)

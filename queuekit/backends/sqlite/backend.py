"""`SQLiteBackend`: the embedded, durable default, on one database file shared by many processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Self

import aiosqlite
import anyio

from ...backend import FencedBackend, Rescued, TransactionalBackend, new_lease_token
from ...errors import (
    BackendUnavailableError,
    InvalidConnectionError,
    InvalidOptionError,
)
from ...job import CLAIMABLE_STATUSES, Attempt, Job, JobStatus, NewJob
from ...limits import Limits, LimitUsage
from ...progress import NO_UPDATE, ProgressUpdate
from ..batching import BatchedFinishes, Finish, FinishBatcher
from ..guards import require_open, unavailable_on
from ..losses import CancelsHere, LossWaiters
from ..sqlfiles import load_migrations
from ..url_options import options_of_url
from .activity import ActivityLog
from .callers import caller_connection, rows_by_name
from .cancels import InProcessCancels
from .claiming import LimitedClaims
from .decided import take_decided
from .edges import insert_jobs
from .events import FileEvents
from .expiry import Expiry
from .limited import claim_limited, claim_statement, in_claim_order, slot_freed, usage_of
from .queries import NOW, SQL, statements
from .repairs import Repairs
from .url import parse_url
from .workers import Workers
from .writes import immediate, savepoint, snapshot

BUSY_TIMEOUT_MS = 30_000
BATCH_MAX = 500
SYNCHRONOUS = ("full", "normal")
"""The `PRAGMA synchronous` levels on offer: see `SQLiteBackend`."""
CHANGE_POLL_SECONDS = 0.01
"""How often a waiting worker looks for commits from other processes (SQLite cannot signal
across processes; `PRAGMA data_version` is a read of shared memory, so looking is cheap)."""
FILE_ERRORS = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PERM,
})  # fmt: skip
"""SQLite's primary result codes that say the database file cannot be used now: locked, full,
read-only, unreadable. The others (a statement refused: no such table, too many terms, a
constraint) are errors of the statement, not of the backend's reach."""


def _about_the_file(error: BaseException) -> bool:
    """Whether a driver error is about the database file (the backend is then unavailable);
    an error SQLite gave no code for (the driver's own) is taken as such."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is None or (code & 0xFF) in FILE_ERRORS


class SQLiteBackend(
    FileEvents,
    InProcessCancels,
    Repairs,
    Workers,
    ActivityLog,
    Expiry,
    BatchedFinishes,
    FencedBackend,
    TransactionalBackend,
):
    """Jobs in one SQLite table; WAL mode, writes under `BEGIN IMMEDIATE`, time from SQLite.

    Wake-ups reach waiters in this process at once; other processes notice new work at their
    worker's poll interval, since SQLite cannot signal across processes.

    `synchronous="full"` (the default) syncs every commit to disk before it returns, so an
    enqueue that returned survives a power cut. `"normal"` syncs only at WAL checkpoints:
    faster, and still safe when the process crashes, but a power cut or an OS crash can lose
    the last commits.
    """

    def __init__(self, path: str, *, synchronous: str = "full") -> None:
        if synchronous not in SYNCHRONOUS:
            raise InvalidOptionError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}"
            )
        self.path = path
        self.synchronous = synchronous
        self._guard = partial(
            unavailable_on,
            (sqlite3.DatabaseError,),
            f"SQLite at {path!r}",
            when=_about_the_file,
        )
        """Reports a locked, unreadable or full database as the backend being unavailable."""
        self._db: aiosqlite.Connection | None = None
        self._file: str | None = None
        """The database's file as SQLite names it, asked once, to check callers' connections."""
        # One connection serves every task of this process; transactions must not interleave.
        self._lock = asyncio.Lock()
        self._work = asyncio.Condition()
        self._cancels = CancelsHere(LossWaiters())
        self._work_made = 0
        """Counts this process's writes that may have made work, so a waiter misses none."""
        self._batcher = FinishBatcher(self._write_finishes, window=0.0, max_size=BATCH_MAX)
        self._limited: set[str] = set()
        """Queues the last claim of them found limited (a hint: the claim reads the limits)."""
        self._limited_claims: LimitedClaims | None = None

    @classmethod
    def from_url(cls, url: str) -> Self:
        """`sqlite:///relative.db`, `sqlite:////absolute/path.db`, or `sqlite://:memory:`;
        `?queuekit_synchronous=normal` trades durability across power cuts for speed."""
        path, options = parse_url(url)
        with options_of_url("SQLite"):
            return cls(path, **options)

    async def open(self) -> None:
        folder = anyio.Path(self.path).parent
        if self.path != ":memory:" and not await folder.is_dir():
            raise BackendUnavailableError(
                f"cannot open SQLite database {self.path!r}: folder {str(folder)!r} does not exist"
            )
        try:
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise BackendUnavailableError(
                f"cannot open SQLite database {self.path!r}: {exc}"
            ) from exc
        if self._batcher.closed:
            self._batcher = FinishBatcher(self._write_finishes, window=0.0, max_size=BATCH_MAX)
        self._db.row_factory = sqlite3.Row
        try:
            with self._guard():
                await self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                await self._db.execute("PRAGMA journal_mode = WAL")
                await self._db.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            await self.migrate()
            self._limited_claims = LimitedClaims(
                self.path, busy_timeout_ms=BUSY_TIMEOUT_MS, synchronous=self.synchronous
            )
        except BaseException:
            await self.close()  # a connection left open keeps its thread, and the process, alive
            raise

    async def close(self) -> None:
        await self._batcher.close()
        if self._limited_claims is not None:
            await self._limited_claims.close()
            self._limited_claims = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def migrate(self) -> list[int]:
        """Apply the migrations the database lacks, under the write lock (so one process at a
        time); return the versions applied. `open` runs it."""
        applied_now: list[int] = []
        async with self._transaction() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS queuekit_migrations"
                " (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            # Every version the database lacks, not only those above its newest: versions are
            # numbered as they are planned, and one may ship after a higher one was applied.
            cursor = await db.execute("SELECT version FROM queuekit_migrations")
            applied = {row[0] for row in await cursor.fetchall()}
            for version, script in load_migrations("sqlite"):
                if version not in applied:
                    for statement in statements(script.replace("{now}", NOW)):
                        await db.execute(statement)
                    await db.execute(
                        f"INSERT INTO queuekit_migrations VALUES (?, ({SQL['now']}))", (version,)
                    )
                    applied_now.append(version)
        return applied_now

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction on the backend's connection, under the process's lock."""
        db = self._connection()
        async with self._lock:
            with self._guard():
                async with immediate(db):
                    yield db

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read transaction on the backend's connection, under the process's lock."""
        db = self._connection()
        async with self._lock:
            with self._guard():
                async with snapshot(db):
                    yield db

    def _connection(self) -> aiosqlite.Connection:
        return require_open(self._db, "SQLite")

    def _claims(self) -> LimitedClaims:
        return require_open(self._limited_claims, "SQLite")

    async def _read(
        self, name: str, params: Mapping[str, Any], conditions: str = ""
    ) -> list[sqlite3.Row]:
        """Run a query; `conditions` fill its `{filter}`, if it has one."""
        sql = SQL[name].replace("{filter}", conditions)
        async with self._lock:
            with self._guard():
                return list(await self._connection().execute_fetchall(sql, params))

    async def _write(self, sql: str, params: Mapping[str, Any]) -> tuple[list[sqlite3.Row], int]:
        """Run one statement on its own; returns its RETURNING rows and its row count.

        A lone write statement takes SQLite's write lock as it starts, as BEGIN IMMEDIATE
        would, so it waits for other writers instead of failing half way.
        """
        db = self._connection()
        async with self._lock:
            with self._guard():
                cursor = await db.execute(sql, params)
                rows = list(await cursor.fetchall())
                return rows, cursor.rowcount

    # Producing

    async def enqueue(self, job: NewJob) -> Job:
        return (await self.enqueue_many([job]))[0]

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        async with self._transaction() as db:
            stored = await insert_jobs(db, jobs)
        await self._notify_work()
        return stored

    async def enqueue_in_transaction(self, connection: object, jobs: Sequence[NewJob]) -> list[Job]:
        """Enqueue on the caller's aiosqlite connection to this database file, inside its open
        transaction: the jobs exist only if it commits, and waiters see the commit."""
        if self._file is None:
            self._file = str((await self._read("database_file", {}))[0]["file"])
        db = await caller_connection(connection, SQL["database_file"], self._file)
        # A savepoint, so a call that fails (an unknown parent, an id taken) leaves nothing
        # in the caller's transaction, as `enqueue_many` stores nothing.
        with self._guard():
            async with savepoint(db):
                return await insert_jobs(db, jobs)

    # Consuming

    async def claim(
        self, slots: Mapping[str, int], *, limit: int, lease: float, worker_id: str
    ) -> list[Job]:
        queues = [(queue, min(count, limit)) for queue, count in slots.items() if count > 0]
        if not queues or limit <= 0:
            return []
        params: dict[str, Any] = {
            "lease": lease,
            "worker_id": worker_id,
            "lease_token": new_lease_token(),
            "limit": limit,
        }
        names = [queue for queue, _ in queues]
        # A queue last seen limited goes straight to the transaction, which reads the limits.
        if self._limited.isdisjoint(names) and not await self._read(
            "limits_of", {"queues": json.dumps(names)}
        ):
            rows, _ = await self._write(claim_statement(queues, params), params)
            return in_claim_order(rows)
        # Queues with limits are claimed under them in the same write transaction as the
        # others, so no other claim sees their running counts half-changed.
        lease_of = {name: params[name] for name in ("lease", "worker_id", "lease_token")}
        plan = claim_limited(queues, limit=limit, claim=lease_of)
        async with self._lock:
            with self._guard():
                jobs, limited = await self._claims().claim(self._connection(), plan)
        self._limited = (self._limited - set(names)) | limited
        return jobs

    async def heartbeat(
        self,
        attempts: Sequence[Attempt],
        *,
        lease: float,
        progress: Mapping[Attempt, ProgressUpdate] | None = None,
    ) -> set[Attempt]:
        updates = [(progress or {}).get(attempt, NO_UPDATE) for attempt in attempts]
        named = json.dumps(
            [
                [a.job_id, a.token, u.fraction, u.note, u.output_json]
                for a, u in zip(attempts, updates, strict=True)
            ]
        )
        rows, _ = await self._write(SQL["heartbeat"], {"attempts": named, "lease": lease})
        held = {(row[0], row[1]) for row in rows}
        return {attempt for attempt in attempts if (attempt.job_id, attempt.token) not in held}

    async def _write_finishes(self, batch: list[Finish]) -> None:
        """Write a batch of finish calls in one transaction, so many jobs share one lock."""
        freed = released = False
        async with self._transaction() as db:
            statuses = []
            for op in batch:
                params = {
                    "id": op.attempt.job_id,
                    "lease_token": op.attempt.token,
                    "result": op.result,
                    "error": op.error,
                    "seconds": op.seconds,
                }
                rows = list(await db.execute_fetchall(SQL[op.kind], params))
                statuses.append(rows[0][0] if rows else None)
                # A job of a limited queue that stops running frees a slot its waiters want; one
                # with dependents that ends may have released some (migration 15's triggers).
                freed = freed or bool(rows and rows[0]["limited"])
                released = released or bool(rows and rows[0]["has_dependents"])
            decided = await take_decided(db) if released else []
        self._announce_decided(decided)
        for op, status in zip(batch, statuses, strict=True):
            op.future.set_result(status)
        if freed or released or any(s in CLAIMABLE_STATUSES for s in statuses):
            await self._notify_work()

    @asynccontextmanager
    async def transaction(self, connection: object) -> AsyncIterator[None]:
        """A write transaction on the caller's aiosqlite connection, for
        `JobContext.transaction`; `BEGIN IMMEDIATE`, as this backend's own writes."""
        if not isinstance(connection, aiosqlite.Connection):
            raise InvalidConnectionError(
                f"transaction() takes an aiosqlite connection, not {type(connection).__name__}"
            )
        if connection.in_transaction:
            raise InvalidConnectionError(
                "transaction() opens its own transaction: the connection is in one already"
            )
        self._connection()
        # Unguarded: errors on the caller's connection are theirs, as they are in the block.
        async with immediate(connection):
            yield

    async def complete_in_transaction(
        self, connection: object, attempt: Attempt, result_json: str | None
    ) -> bool:
        assert isinstance(connection, aiosqlite.Connection)
        params = {"id": attempt.job_id, "lease_token": attempt.token, "result": result_json}
        with self._guard():
            rows = await rows_by_name(connection, SQL["complete"], params)
            if rows and rows[0]["has_dependents"]:
                # Announced now: the caller's commit is not seen here (a rollback takes back
                # what was announced; events are best effort).
                self._announce_decided(await take_decided(connection))
        return bool(rows)

    async def rescue(self) -> Rescued:
        await self.fold_counts()  # the upkeep each worker does now and then
        async with self._transaction() as db:
            rows = list(await db.execute_fetchall(SQL["rescue"]))
            dependents = any(row["has_dependents"] for row in rows)
            decided = await take_decided(db) if dependents else []
        self._announce_decided(decided)
        if rows:
            await self._notify_work()
        dead = sum(1 for row in rows if row["status"] == JobStatus.DEAD)
        return Rescued(failed=len(rows) - dead, dead=dead)

    async def _notify_work(self) -> None:
        async with self._work:
            self._work_made += 1
            self._work.notify_all()

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        names = {"queues": json.dumps(list(queues))}
        made, version = self._work_made, await self._data_version()
        limited = await self._read("limited_waits", names)
        while True:
            rows = await self._read("next_due", names)
            until = deadline
            if rows[0][0] is not None:
                now = float((await self._read("now", {}))[0][0])
                until = min(deadline, loop.time() + rows[0][0] - now)
            # Woken by this process's own writes (counted, so one made while this coroutine was
            # reading is not missed), or by another process's commit when the database's
            # version moves; then the due time is read again.
            while (wait := until - loop.time()) > 0:
                async with self._work:
                    if self._work_made != made:
                        return
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(wait, CHANGE_POLL_SECONDS)):
                            await self._work.wait()
                        return
                seen, version = version, await self._data_version()
                if version != seen:
                    if limited:
                        # next_due skips a limited queue's ready jobs: look for a freed slot
                        # or new work there instead.
                        before, limited = limited, await self._read("limited_waits", names)
                        if slot_freed(before, limited):
                            return
                    break
            else:
                return

    async def _data_version(self) -> int:
        return int((await self._read("data_version", {}))[0][0])

    async def _change(self, name: str, params: Mapping[str, Any]) -> int:
        _, count = await self._write(SQL[name], params)
        return count

    async def pause(self, queue: str) -> None:
        await self._change("pause", {"queue": queue})

    async def resume(self, queue: str) -> None:
        if await self._change("resume", {"queue": queue}):
            await self._notify_work()

    async def paused_queues(self) -> set[str]:
        return {row[0] for row in await self._read("paused_queues", {})}

    async def set_limits(self, queue: str, limits: Limits | None) -> None:
        if limits is None:
            await self._change("clear_limits", {"queue": queue})
        else:
            await self._change("set_limits", {"queue": queue, "limits": limits.to_json()})
        # Limits raised or removed may let waiting workers claim at once.
        await self._notify_work()

    async def get_limits(self) -> dict[str, Limits]:
        rows = await self._read("all_limits", {})
        return {row["queue"]: Limits.from_json(row["limits"]) for row in rows}

    async def hold(self, queue: str, key: str | None, seconds: float) -> None:
        await self._change("hold", {"queue": queue, "key": key or "", "seconds": seconds})

    async def limit_usage(self, queue: str) -> LimitUsage:
        async with self._lock:
            with self._guard():
                return await usage_of(self._connection(), queue)

"""`PostgresBackend`: jobs in one PostgreSQL table, claimed with SKIP LOCKED, woken by NOTIFY.

- Every statement is one round trip and computes time with the server's `now()`.
- `complete`, `fail` and `snooze` calls are buffered and written together, one statement per
  batch, each row fenced by its attempt; each caller learns its own row's outcome once the batch
  has committed.
- Idle waiters share one LISTEN connection per backend, which reconnects by itself; with
  `poll_only` (for PgBouncer in transaction mode) they poll instead.

See docs/postgres.md for URL options, the schema and operating advice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import asyncpg.pool

from ..backend import Backend
from ..errors import (
    BackendUnavailableError,
    InvalidNameError,
    InvalidOptionError,
    InvalidPayloadError,
    InvalidURLError,
)
from ..job import TERMINAL_STATUSES, Attempt, Job, JobPage, JobStatus, NewJob
from ..stats import SUCCESS_WINDOW_SECONDS, QueueCounts
from ..validation import check_identifier
from .batching import BatchedFinishes, Finish, FinishBatcher
from .sqlfiles import load_migrations, load_queries

logger = logging.getLogger("queuekit.postgres")

Record: TypeAlias = asyncpg.Record
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
Connection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
)

SCHEMES = ("postgresql", "postgres")
URL_PREFIX = "queuekit_"
MAX_BIGINT = 2**63 - 1
MAX_TABLE_NAME_LENGTH = 50
"""Leaves room for the suffixes of the index and migration-table names (63 bytes in all)."""

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out
    asyncpg.PostgresConnectionError,  # 08xxx: the connection does not exist or failed
    asyncpg.InterfaceError,  # "connection is closed", "pool is closing"
    asyncpg.exceptions.AdminShutdownError,  # 57P01: the server is shutting down
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
    # A connection the server closed while idle can be caught between the server's FATAL
    # message and the socket's end: asyncpg then says "cannot switch to state ...".
    asyncpg.exceptions.InternalClientError,
)
"""Errors that mean the server cannot be reached, surfaced as `BackendUnavailableError`."""
CONNECT_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)
"""Errors of a first connection: refused, but also a bad password or an unknown database."""

LISTENER_READY_WAIT = 2.0
"""How long the first waiter waits for the LISTEN connection to come up."""
LISTENER_PING_SECONDS = 30.0
"""An idle LISTEN connection is checked this often, so a silently dead one is replaced."""
RECONNECT_MIN, RECONNECT_MAX = 0.1, 5.0
"""Backoff bounds, in seconds, between attempts to re-establish the LISTEN connection."""
OUTCOME_RECHECK_SECONDS = 5.0
"""A job's outcome is re-read this often even without a notification (belt and braces)."""
POLL_ONLY_OUTCOME_SECONDS = 0.1
"""How often `wait_for_outcome` looks in poll-only mode."""
OUTCOME_IDS_SEPARATOR = " "
SERVER_SETTINGS = {
    "application_name": "queuekit",
    "jit": "off",
    "enable_seqscan": "off",
    "plan_cache_mode": "force_generic_plan",
}
"""Session settings for the connections queuekit opens (a DSN option of the same name wins).

- `jit`: the claim's recursive CTE makes the planner overestimate its cost past
  `jit_above_cost`, and compiling then takes ~20 ms for a statement that runs in under 1 ms.
- `enable_seqscan`: a queue table swings from empty to millions of rows between two
  autovacuum ANALYZE runs, and a plan made from statistics taken while it was small scans it
  whole. Every statement queuekit sends has an index path, so with sequential scans priced
  out its plans take the index whatever the statistics say (measured on a fresh table with
  100,000 rows not yet analyzed: 35 ms per claim with sequential scans allowed, 1.4 ms without).
- `plan_cache_mode`: with the plan shape pinned to the indexes, each prepared statement is
  planned once, not on every call: planning was 0.5 ms of a 0.8 ms enqueue and 0.6 ms of a
  1.2 ms claim.
"""


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """Turn what PostgreSQL refuses to store into the typed errors of the API."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise InvalidOptionError(
            f"a job with that id already exists ({exc.detail or exc})"
        ) from None
    except asyncpg.DataError as exc:
        raise InvalidPayloadError(f"PostgreSQL refused a payload: {exc}") from None
    except asyncpg.CheckViolationError as exc:
        raise InvalidOptionError(f"PostgreSQL refused a job: {exc}") from None


async def _keep_session(_connection: object) -> None:
    """A pool `reset` hook that sends nothing to the server."""


_NO_RESET: dict[str, Any] = (
    {"reset": _keep_session} if "reset" in inspect.signature(asyncpg.create_pool).parameters else {}
)
"""Our own pool's connections carry no session state (no LISTEN, SET, cursors or session
advisory locks), so a released connection needs no `RESET ALL; UNLISTEN *; ...` round trip;
asyncpg still rolls back a transaction left open. (asyncpg >= 0.30 has the hook.)"""


def _true(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise InvalidURLError(f"URL option {name}={value!r} must be true or false")


def _number(name: str, value: str, kind: type[int] | type[float]) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise InvalidURLError(f"URL option {name}={value!r} must be a number") from None
    if not math.isfinite(number) or number < 0:
        raise InvalidURLError(f"URL option {name}={value!r} must be finite and >= 0")
    return number


# name in the URL (after the queuekit_ prefix) -> (constructor keyword, parser)
_URL_OPTIONS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "schema": ("schema", lambda _n, v: v),
    "table": ("table", lambda _n, v: v),
    "pool_min": ("min_pool_size", lambda n, v: _number(n, v, int)),
    "pool_max": ("max_pool_size", lambda n, v: _number(n, v, int)),
    "poll_only": ("poll_only", _true),
    "migrate": ("migrate", _true),
    "notify_cooldown": ("notify_cooldown", lambda n, v: _number(n, v, float)),
    "batch_window": ("batch_window", lambda n, v: _number(n, v, float)),
    "batch_max": ("batch_max", lambda n, v: _number(n, v, int)),
    "connect_timeout": ("connect_timeout", lambda n, v: _number(n, v, float)),
    "statement_cache_size": ("statement_cache_size", lambda n, v: _number(n, v, int)),
}


def _quote(identifier: str) -> str:
    """Quote an identifier already checked by `check_identifier` (so it holds no quote)."""
    return f'"{identifier}"'


def _job(row: Record) -> Job:
    """Build a `Job` from a row of the jobs table (asyncpg gives aware UTC datetimes)."""
    result, headers = row["result"], row["headers"]
    return Job(
        id=row["id"],
        queue=row["queue"],
        type=row["type"],
        payload=json.loads(row["payload"]),
        priority=row["priority"],
        status=JobStatus(row["status"]),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        created_at=row["created_at"],
        scheduled_at=row["scheduled_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        lease_expires_at=row["lease_expires_at"],
        worker_id=row["worker_id"],
        last_error=row["last_error"],
        unique_key=row["unique_key"],
        result=None if result is None else json.loads(result),
        headers={} if headers is None else json.loads(headers),
    )


def _rowcount(status: str) -> int:
    """The row count of a command tag such as 'DELETE 3'."""
    return int(status.rsplit(" ", 1)[-1])


class _Debouncer:
    """At most one wake-up NOTIFY per queue per `cooldown` from this process.

    A wake-up that falls inside the cooldown is not dropped: one trailing NOTIFY per queue goes
    out when the cooldown ends, so a waiter elsewhere hears about every job within `cooldown`.
    """

    def __init__(self, cooldown: float, send: Callable[[str], Awaitable[None]]) -> None:
        self._cooldown = cooldown
        self._send = send
        self._last: dict[str, float] = {}
        self._trailing: dict[str, asyncio.Task[None]] = {}

    def take(self, queues: Iterable[str]) -> list[str]:
        """The queues to notify now; the others get a trailing notification."""
        now = time.monotonic()
        due: list[str] = []
        for queue in queues:
            last = self._last.get(queue)
            if last is None or now - last >= self._cooldown:
                self._last[queue] = now
                due.append(queue)
            elif queue not in self._trailing:
                delay = last + self._cooldown - now
                self._trailing[queue] = asyncio.create_task(self._trail(queue, delay))
        return due

    async def _trail(self, queue: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._last[queue] = time.monotonic()
        del self._trailing[queue]
        await self._send_quietly(queue)

    async def _send_quietly(self, queue: str) -> None:
        try:
            await self._send(queue)
        except Exception as exc:  # a lost wake-up only costs a poll interval
            logger.warning("could not send a wake-up for queue %r: %s", queue, exc)

    async def close(self) -> None:
        """Send the trailing notifications now rather than drop them."""
        trailing, self._trailing = self._trailing, {}
        for task in trailing.values():
            task.cancel()
        for queue in trailing:
            await self._send_quietly(queue)


class PostgresBackend(BatchedFinishes, Backend):
    """Jobs in one PostgreSQL table (asyncpg), following DESIGN.md.

    Give either a `dsn` (`postgresql://user@host:5432/db`; the backend owns its pool) or an
    existing asyncpg `pool` (the caller keeps owning it; the LISTEN connection is then taken
    from it). `schema` and `table` name where the jobs live; both are validated identifiers.
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
        statement_cache_size: int = 100,
        prune_batch_size: int = 10_000,
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
        for name, value in (
            ("notify_cooldown", notify_cooldown),
            ("batch_window", batch_window),
            ("connect_timeout", connect_timeout),
        ):
            if not math.isfinite(value) or value < 0:
                raise InvalidOptionError(f"{name} must be finite and >= 0, got {value!r}")
        self._dsn = dsn
        self._given_pool = pool
        self._pool: Pool | None = None
        """The pool in use: set while the backend is open."""
        self.schema = schema
        self.table = table
        self.poll_only = poll_only
        self._min_pool_size = min_pool_size
        self._max_pool_size = max_pool_size
        self._migrate_on_open = migrate
        self._connect_timeout = connect_timeout
        self._statement_cache_size = statement_cache_size
        self._prune_batch_size = prune_batch_size
        self._where = _describe(dsn) if dsn is not None else "the given pool"

        self.qualified_table = f"{_quote(schema)}.{_quote(table)}"
        self._migrations_table = f"{_quote(schema)}.{_quote(table + '_migrations')}"
        replacements = {
            "{jobs}": self.qualified_table,
            "{migrations}": self._migrations_table,
            "{paused}": f"{_quote(schema)}.{_quote(table + '_paused')}",
            "{schema}": _quote(schema),
            "{table}": table,
        }
        self._render: Callable[[str], str] = lambda sql: _substitute(sql, replacements)
        self._sql = {name: self._render(body) for name, body in load_queries("postgres").items()}
        channel = f"{schema}.{table}"
        # NOTIFY channels are identifiers: at most 63 bytes.
        digest = hashlib.sha256(channel.encode()).hexdigest()[:32]
        self.channel = channel if len(channel) <= 63 else f"queuekit_{digest}"

        self._batch_window = batch_window
        self._batch_max = batch_max
        self._batcher = self._new_batcher()
        self._debouncer = _Debouncer(notify_cooldown, self._notify_work)
        self._work_waiters: dict[str, set[asyncio.Event]] = {}
        self._outcome_waiters: dict[str, set[asyncio.Event]] = {}
        self._listener_task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.listener_connections = 0
        """How many times the LISTEN connection has been (re)established."""
        self._closing = False

    @classmethod
    def from_url(cls, url: str) -> PostgresBackend:
        """`postgresql://user:password@host:5432/db?queuekit_schema=jobs&...`.

        `queuekit_*` query options configure the backend (see docs/postgres.md) and are
        removed; everything else goes to asyncpg as it is.
        """
        try:
            parts = urlsplit(url)
            query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False)
        except ValueError as exc:
            raise InvalidURLError(f"malformed PostgreSQL URL: {exc}") from None
        if parts.scheme.lower() not in SCHEMES:
            raise InvalidURLError(
                f"not a PostgreSQL URL: {parts.scheme!r}; use postgresql://user@host:port/db"
            )
        if parts.fragment:
            raise InvalidURLError("a PostgreSQL URL takes no #fragment")
        options: dict[str, Any] = {}
        passed: list[tuple[str, str]] = []
        for name, value in query:
            if not name.startswith(URL_PREFIX):
                passed.append((name, value))
                continue
            option = _URL_OPTIONS.get(name[len(URL_PREFIX) :])
            if option is None:
                known = ", ".join(URL_PREFIX + key for key in _URL_OPTIONS)
                raise InvalidURLError(f"unknown URL option {name!r}; queuekit knows {known}")
            keyword, parse = option
            options[keyword] = parse(name, value)
        dsn = urlunsplit(parts._replace(query=urlencode(passed)))
        try:
            return cls(dsn, **options)
        except InvalidNameError:
            raise
        except InvalidOptionError as exc:
            raise InvalidURLError(f"bad PostgreSQL URL option: {exc}") from None

    # Connections

    def _new_batcher(self) -> FinishBatcher:
        return FinishBatcher(
            self._write_finishes, window=self._batch_window, max_size=self._batch_max
        )

    async def open(self) -> None:
        self._closing = False
        if self._batcher.closed:
            self._batcher = self._new_batcher()
        if self._pool is not None:
            return
        if self._given_pool is not None:
            self._pool = self._given_pool
        else:
            pool: Pool = asyncpg.create_pool(
                self._dsn,
                min_size=self._min_pool_size,
                max_size=self._max_pool_size,
                timeout=self._connect_timeout,
                statement_cache_size=self._statement_cache_size,
                server_settings=self._server_settings(),
                **_NO_RESET,
            )
            try:
                await pool
            except ValueError as exc:  # asyncpg's DSN parser (ClientConfigurationError too)
                pool.terminate()
                raise InvalidURLError(f"bad PostgreSQL DSN: {exc}") from None
            except CONNECT_ERRORS as exc:
                pool.terminate()
                raise BackendUnavailableError(
                    f"cannot connect to PostgreSQL at {self._where} (is the server running and "
                    f"the DSN right?): {type(exc).__name__}: {exc}"
                ) from exc
            self._pool = pool
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
        self._closing = True
        try:
            await self._batcher.close()
            await self._debouncer.close()
        finally:
            if self._listener_task is not None:
                self._listener_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._listener_task
                self._listener_task = None
            self._wake_everyone()
            pool, self._pool = self._pool, None
            if pool is not self._given_pool:
                try:
                    await asyncio.wait_for(pool.close(), timeout=10)
                except CONNECTION_ERRORS:  # TimeoutError is an OSError
                    pool.terminate()

    def _server_settings(self) -> dict[str, str]:
        """Session settings for our connections, unless the DSN sets them itself."""
        given = dict(parse_qsl(urlsplit(self._dsn or "").query))
        return {name: value for name, value in SERVER_SETTINGS.items() if name not in given}

    def _require_pool(self) -> Pool:
        if self._pool is None:
            raise BackendUnavailableError("the PostgreSQL backend is not open")
        return self._pool

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn a lost or refused connection into `BackendUnavailableError`."""
        try:
            yield
        except CONNECTION_ERRORS as exc:
            raise BackendUnavailableError(
                f"PostgreSQL at {self._where} is unavailable: {type(exc).__name__}: {exc}"
            ) from exc

    async def _fetch(self, name: str, *args: object) -> list[Record]:
        pool = self._require_pool()
        with self._guard():
            return await pool.fetch(self._sql[name], *args)

    async def _execute(self, name: str, *args: object) -> str:
        pool = self._require_pool()
        with self._guard():
            return await pool.execute(self._sql[name], *args)

    # Schema

    async def migrate(self) -> list[int]:
        """Create or upgrade the schema; return the versions applied by this call.

        Safe to run from many processes at once: the work happens under a transaction-level
        advisory lock, so exactly one of them applies each version.
        """
        pool = self._require_pool()
        migrations = load_migrations("postgres")
        applied_now: list[int] = []
        with self._guard():
            async with pool.acquire() as conn:
                if await conn.fetchval(self._sql["migration_table_exists"], self._migrations_table):
                    done = {row[0] for row in await conn.fetch(self._sql["applied_versions"])}
                    if all(version in done for version, _ in migrations):
                        return []
                async with conn.transaction():
                    await conn.execute(
                        self._sql["migration_lock"], f"queuekit:{self.schema}.{self.table}"
                    )
                    has_schema = await conn.fetchval(
                        self._sql["schema_exists"], _quote(self.schema)
                    )
                    if not has_schema:
                        await conn.execute(self._sql["create_schema"])
                    await conn.execute(self._sql["create_migrations"])
                    done = {row[0] for row in await conn.fetch(self._sql["applied_versions"])}
                    for version, script in migrations:
                        if version not in done:
                            await conn.execute(self._render(script))
                            await conn.execute(self._sql["record_migration"], version)
                            applied_now.append(version)
        if applied_now:
            logger.info("migrated %s to version %d", self.qualified_table, applied_now[-1])
        return applied_now

    # Producing

    async def enqueue(self, job: NewJob) -> Job:
        return (await self.enqueue_many([job]))[0]

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        pool = self._require_pool()
        queues = sorted({job.queue for job in jobs})
        notify = self._debouncer.take(queues)
        with self._guard():
            async with pool.acquire() as conn:
                stored = await self._insert(conn, jobs, notify)
        self._wake_work(queues)
        return stored

    async def enqueue_in_transaction(self, connection: object, jobs: Sequence[NewJob]) -> list[Job]:
        """Enqueue on the caller's asyncpg connection, inside whatever transaction it has open.

        The jobs (and their wake-up) exist only if that transaction commits. Nothing is
        debounced here: a wake-up sent outside the transaction could arrive before the commit.
        """
        if not isinstance(connection, asyncpg.Connection | asyncpg.pool.PoolConnectionProxy):
            raise InvalidOptionError(
                "connection= takes an asyncpg connection (or a pool's connection), "
                f"not {type(connection).__name__}"
            )
        self._require_pool()
        if not jobs:
            return []
        with self._guard():
            return await self._insert(connection, jobs, sorted({job.queue for job in jobs}))

    async def _insert(
        self, conn: Connection, jobs: Sequence[NewJob], notify: Sequence[str]
    ) -> list[Job]:
        if len(jobs) == 1 and jobs[0].unique_key is None:
            return [await self._insert_one(conn, jobs[0], notify)]
        stored: list[Job | None] = [None] * len(jobs)
        todo = list(range(len(jobs)))
        for _ in range(5):
            batch = [jobs[i] for i in todo]
            with _refusals():
                rows = await conn.fetch(
                    self._sql["insert"],
                    [job.id for job in batch],
                    [job.queue for job in batch],
                    [job.type for job in batch],
                    [job.payload_json for job in batch],
                    [job.priority for job in batch],
                    [job.max_attempts for job in batch],
                    [job.delay for job in batch],
                    [job.run_at for job in batch],
                    [job.unique_key for job in batch],
                    [job.headers_json for job in batch],
                    self.channel,
                    list(notify),
                )
            inserted = {row["id"]: row for row in rows if row["inserted"]}
            holders = {
                (row["queue"], row["unique_key"]): row for row in rows if not row["inserted"]
            }
            holders.update(
                {
                    (row["queue"], row["unique_key"]): row
                    for row in inserted.values()
                    if row["unique_key"] is not None
                }
            )
            missing = [i for i in todo if not self._answer(jobs[i], i, inserted, holders, stored)]
            if not missing:
                break
            # Their key's holder committed after the insert's snapshot: look again.
            lookup = [jobs[i] for i in missing]
            for row in await conn.fetch(
                self._sql["live_unique"],
                [job.queue for job in lookup],
                [job.unique_key for job in lookup],
            ):
                holders[(row["queue"], row["unique_key"])] = row
            # Whatever is still unanswered lost its holder meanwhile: insert it again.
            todo = [i for i in missing if not self._answer(jobs[i], i, {}, holders, stored)]
            if not todo:
                break
        if any(job is None for job in stored):
            raise BackendUnavailableError("enqueue kept racing with changes to its unique keys")
        return [job for job in stored if job is not None]

    async def _insert_one(self, conn: Connection, job: NewJob, notify: Sequence[str]) -> Job:
        """The common enqueue (one job, no unique key) in a statement that is cheaper to run."""
        with _refusals():
            row = await conn.fetchrow(
                self._sql["insert_one"],
                job.id,
                job.queue,
                job.type,
                job.payload_json,
                job.priority,
                job.max_attempts,
                job.delay,
                job.run_at,
                job.headers_json,
                self.channel,
                bool(notify),
            )
        assert row is not None
        return _job(row)

    @staticmethod
    def _answer(
        job: NewJob,
        index: int,
        inserted: Mapping[str, Record],
        holders: Mapping[tuple[str, str | None], Record],
        stored: list[Job | None],
    ) -> bool:
        row = inserted.get(job.id)
        if row is None and job.unique_key is not None:
            row = holders.get((job.queue, job.unique_key))
        if row is None:
            return False
        stored[index] = _job(row)
        return True

    # Consuming

    async def claim(
        self, slots: Mapping[str, int], *, limit: int, lease: float, worker_id: str
    ) -> list[Job]:
        lanes = [(queue, count) for queue, count in slots.items() if count > 0]
        if not lanes or limit <= 0:
            return []
        rows = await self._fetch(
            "claim",
            [queue for queue, _ in lanes],
            [count for _, count in lanes],
            limit,
            lease,
            worker_id,
        )
        return [_job(row) for row in rows]

    async def heartbeat(self, attempts: Sequence[Attempt], *, lease: float) -> set[Attempt]:
        if not attempts:
            return set()
        rows = await self._fetch(
            "heartbeat",
            [attempt.job_id for attempt in attempts],
            [attempt.number for attempt in attempts],
            lease,
        )
        held = {Attempt(row["id"], row["attempts"]) for row in rows}
        return {attempt for attempt in attempts if attempt not in held}

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
                [op.attempt.number for op in batch],
                [op.kind for op in batch],
                [op.result for op in batch],
                [op.error for op in batch],
                [op.seconds for op in batch],
                self.channel,
            )
        except asyncpg.PostgresError as exc:
            if len(batch) > 1:
                # One bad call (say, a result that is not JSON) must not fail the others.
                for op in batch:
                    await self._write_finishes([op])
                return
            error: Exception = exc
            if isinstance(exc, asyncpg.DataError):
                error = InvalidPayloadError(f"PostgreSQL refused a result: {exc}")
            if not batch[0].future.done():
                batch[0].future.set_exception(error)
            return
        outcomes = {(row["id"], row["attempt"]): row for row in rows}
        work: set[str] = set()
        finished: list[str] = []
        for op in batch:
            row = outcomes.get((op.attempt.job_id, op.attempt.number))
            if not op.future.done():
                op.future.set_result(None if row is None else row["status"])
            if row is not None:
                if row["status"] in (JobStatus.PENDING, JobStatus.FAILED):
                    work.add(row["queue"])
                else:
                    finished.append(row["id"])
        self._wake_work(work)
        self._wake_outcomes(finished)

    async def rescue(self) -> int:
        rows = await self._fetch("rescue", self.channel)
        self._wake_work({row["queue"] for row in rows if row["status"] == JobStatus.FAILED})
        self._wake_outcomes([row["id"] for row in rows if row["status"] == JobStatus.DEAD])
        return len(rows)

    # Waiting

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if timeout <= 0 or not queues:
            await asyncio.sleep(max(0.0, timeout) if math.isfinite(timeout) else 0)
            return
        await self._ensure_listener(min(timeout, LISTENER_READY_WAIT))
        event = asyncio.Event()
        _register(self._work_waiters, queues, event)
        try:
            # After registering (and listening): anything committed from here on wakes us, and
            # anything committed before is seen by this query.
            rows = await self._fetch("next_due", list(queues))
            due = rows[0]["seconds"] if rows else None
            if due is not None:
                # A millisecond late rather than early, so the claim that follows finds it.
                deadline = min(deadline, loop.time() + max(0.0, due) + 0.001)
            await _wait(event, deadline - loop.time())
        finally:
            _unregister(self._work_waiters, queues, event)

    async def wait_for_outcome(self, job_id: str, timeout: float) -> Job | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self._ensure_listener(min(timeout, LISTENER_READY_WAIT))
        recheck = POLL_ONLY_OUTCOME_SECONDS if self.poll_only else OUTCOME_RECHECK_SECONDS
        event = asyncio.Event()
        _register(self._outcome_waiters, [job_id], event)
        try:
            while True:
                event.clear()
                job = await self.get_job(job_id)
                if job is None or job.status in TERMINAL_STATUSES:
                    return job
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                await _wait(event, min(remaining, recheck))
        finally:
            _unregister(self._outcome_waiters, [job_id], event)

    async def _ensure_listener(self, wait: float) -> None:
        """Start the shared LISTEN connection if needed.

        The first time, give it up to `wait` s to come up, so the caller's look at the table
        happens while listening. While it is reconnecting later, don't wait: a waiter that
        registers meanwhile is woken when it is back (notifications sent during the gap are
        lost, so every waiter is woken then).
        """
        if self.poll_only or self._closing:
            return
        if self._listener_task is None:
            self._listener_task = asyncio.create_task(self._listen_forever())
        if self.listener_connections == 0 and not self._listening.is_set() and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), wait)

    async def _listen_forever(self) -> None:
        """Hold one LISTEN connection; when it drops, reconnect with backoff, forever."""
        delay = RECONNECT_MIN
        while not self._closing:
            conn: Connection | None = None
            try:
                conn = await self._listener_connect()
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(self.channel, self._on_notification)
                self._listening.set()
                if self.listener_connections:
                    logger.info("LISTEN connection to %s is back", self._where)
                self.listener_connections += 1
                # Whatever was sent while nobody listened is lost: let every waiter look.
                self._wake_everyone()
                delay = RECONNECT_MIN
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), LISTENER_PING_SECONDS)
                    if not lost.is_set():
                        await conn.execute("SELECT 1", timeout=LISTENER_PING_SECONDS)
                logger.warning("LISTEN connection to %s was lost; reconnecting", self._where)
            except Exception as exc:
                logger.warning(
                    "LISTEN connection to %s failed (%s: %s); retrying in %.1f s",
                    self._where,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
            finally:
                self._listening.clear()
                if conn is not None:
                    await self._listener_release(conn)

    async def _listener_connect(self) -> Connection:
        if self._dsn is not None:
            return await asyncpg.connect(
                self._dsn, timeout=self._connect_timeout, server_settings=self._server_settings()
            )
        return await self._require_pool().acquire()

    async def _listener_release(self, conn: Connection) -> None:
        with contextlib.suppress(Exception):
            if isinstance(conn, asyncpg.pool.PoolConnectionProxy):
                if self._pool is not None:
                    await self._pool.release(conn, timeout=1)
            elif not conn.is_closed():
                await asyncio.wait_for(conn.close(), timeout=1)
        if isinstance(conn, asyncpg.Connection) and not conn.is_closed():
            conn.terminate()

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if not isinstance(payload, str):
            return
        if payload.startswith("w:"):
            self._wake_work([payload[2:]])
        elif payload == "o":
            self._wake_outcomes(list(self._outcome_waiters))
        elif payload.startswith("o:"):
            ids = payload[2:]
            named = set(ids.split(OUTCOME_IDS_SEPARATOR))
            self._wake_outcomes(
                [
                    job_id
                    for job_id in self._outcome_waiters
                    if job_id in named or (OUTCOME_IDS_SEPARATOR in job_id and job_id in ids)
                ]
            )

    async def _notify_work(self, queue: str) -> None:
        await self._execute("notify", self.channel, f"w:{queue}")

    def _wake_work(self, queues: Iterable[str]) -> None:
        for queue in queues:
            for event in self._work_waiters.get(queue, ()):
                event.set()

    def _wake_outcomes(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            for event in self._outcome_waiters.get(job_id, ()):
                event.set()

    def _wake_everyone(self) -> None:
        for waiters in (self._work_waiters, self._outcome_waiters):
            for events in waiters.values():
                for event in events:
                    event.set()

    # Inspecting and repairing

    async def get_job(self, job_id: str) -> Job | None:
        rows = await self._fetch("get", job_id)
        return _job(rows[0]) if rows else None

    async def list_jobs(
        self,
        *,
        queue: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        # Only the conditions in use, so each variant gets a plan that fits the list index.
        conditions: list[str] = []
        args: list[object] = []
        for column, value in (
            ("queue = ", queue),
            ("status = ", None if status is None else str(status)),
            ("seq < ", None if cursor is None else min(int(cursor), MAX_BIGINT)),
        ):
            if value is not None:
                args.append(value)
                conditions.append(f"{column}${len(args)}")
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        args.append(limit + 1)
        sql = f"SELECT * FROM {self.qualified_table} {where}ORDER BY seq DESC LIMIT ${len(args)}"
        pool = self._require_pool()
        with self._guard():
            rows = await pool.fetch(sql, *args)
        page = rows[:limit]
        next_cursor = str(page[-1]["seq"]) if len(rows) > limit else None
        return JobPage([_job(row) for row in page], next_cursor)

    async def list_queues(self) -> list[str]:
        return [row["queue"] for row in await self._fetch("list_queues")]

    async def pause(self, queue: str) -> None:
        await self._execute("pause", queue)

    async def resume(self, queue: str) -> None:
        rows = await self._fetch("resume", queue, self.channel)
        if rows and rows[0]["notified"]:
            self._wake_work([queue])

    async def paused_queues(self) -> set[str]:
        return {row["queue"] for row in await self._fetch("paused_queues")}

    async def stats(self, queue: str) -> QueueCounts:
        rows = {
            row["status"]: row for row in await self._fetch("counts", queue, SUCCESS_WINDOW_SECONDS)
        }

        def count(status: JobStatus, column: str = "n") -> int:
            row = rows.get(status)
            return int(row[column]) if row is not None else 0

        ages = [
            row["ready_age"]
            for status in (JobStatus.PENDING, JobStatus.FAILED)
            if (row := rows.get(status)) is not None and row["ready_age"] is not None
        ]
        return QueueCounts(
            pending=count(JobStatus.PENDING),
            scheduled=count(JobStatus.PENDING, "scheduled") + count(JobStatus.FAILED, "scheduled"),
            running=count(JobStatus.RUNNING),
            completed=count(JobStatus.COMPLETED),
            failed=count(JobStatus.FAILED),
            dead=count(JobStatus.DEAD),
            cancelled=count(JobStatus.CANCELLED),
            oldest_ready_age=max(ages) if ages else None,
            completed_recently=count(JobStatus.COMPLETED, "recent"),
            dead_recently=count(JobStatus.DEAD, "recent"),
            expired_leases=count(JobStatus.RUNNING, "expired"),
        )

    async def cancel(self, job_id: str) -> Job | None:
        rows = await self._fetch("cancel", job_id, self.channel)
        if not rows:
            return await self.get_job(job_id)
        self._wake_outcomes([job_id])
        return _job(rows[0])

    async def replay(self, job_id: str) -> Job | None:
        try:
            rows = await self._fetch("replay", job_id, self.channel)
        except asyncpg.UniqueViolationError:
            rows = []  # a live job took the unique key at the same moment: leave this one
        if not rows:
            return await self.get_job(job_id)
        job = _job(rows[0])
        self._wake_work([job.queue])
        return job

    async def delete_job(self, job_id: str) -> bool:
        return _rowcount(await self._execute("delete", job_id)) == 1

    async def purge(self, queue: str, status: JobStatus) -> int:
        if status == JobStatus.RUNNING:
            return 0
        return await self._delete_in_batches("purge", "seq", queue, str(status))

    async def prune(self, older_than: float, statuses: Sequence[JobStatus]) -> int:
        cutoff = (await self._fetch("prune_cutoff", older_than))[0][0]
        deleted = 0
        for status in dict.fromkeys(statuses):
            deleted += await self._delete_in_batches("prune", "finished_at", str(status), cutoff)
        return deleted

    async def _delete_in_batches(self, name: str, bound: str, first: object, second: object) -> int:
        """Delete at most `prune_batch_size` rows per statement, so none runs long.

        `{name}_keys` returns one batch's keys, in order of the column `bound`; `{name}` deletes
        those keys within that column's range (see purge_keys in queries.sql).
        """
        total = 0
        while True:
            rows = await self._fetch(f"{name}_keys", first, second, self._prune_batch_size)
            if not rows:
                return total
            keys = [row["seq"] for row in rows]
            low, high = rows[0][bound], rows[-1][bound]
            total += _rowcount(await self._execute(name, first, second, keys, low, high))
            if len(rows) < self._prune_batch_size:
                return total


def _substitute(sql: str, replacements: Mapping[str, str]) -> str:
    for token, value in replacements.items():
        sql = sql.replace(token, value)
    return sql


def _describe(dsn: str) -> str:
    """Where a DSN points, for messages: host, port and database, never the password."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "the configured server"
    location = parts.netloc.rpartition("@")[2] or "localhost"
    return f"{location}{parts.path or ''}"


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    """A callback that sets `event`, whatever it is called with."""
    return lambda _ignored: event.set()


def _register(
    waiters: dict[str, set[asyncio.Event]], keys: Iterable[str], event: asyncio.Event
) -> None:
    for key in keys:
        waiters.setdefault(key, set()).add(event)


def _unregister(
    waiters: dict[str, set[asyncio.Event]], keys: Iterable[str], event: asyncio.Event
) -> None:
    for key in keys:
        events = waiters.get(key)
        if events is not None:
            events.discard(event)
            if not events:
                del waiters[key]


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait for `event`, at most `seconds` (which may be infinite)."""
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), None if math.isinf(seconds) else seconds)

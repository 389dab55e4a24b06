"""PostgreSQL schema: migrations (idempotent, concurrent), constraints the database enforces,
and names that must never reach SQL unchecked."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

import queuekit
from queuekit import InvalidNameError, InvalidURLError, JobStatus
from queuekit.backends.postgres import PostgresBackend
from queuekit.backends.postgres import migrations as postgres_migrations
from queuekit.backends.sqlfiles import load_migrations

from ..setups import BackendSetup, with_url_options
from .conftest import OpenBackend

LATEST = load_migrations("postgres")[-1][0]


async def test_migrations_are_recorded_once_and_rerun_as_no_ops(
    pg_backend: PostgresBackend, open_backend: OpenBackend
) -> None:
    assert await pg_backend.migrate() == []
    again = await open_backend()  # a second first-connect
    assert await again.migrate() == []
    pool = pg_backend._pool
    assert pool is not None
    rows = await pool.fetch(
        f'SELECT version FROM "{pg_backend.schema}"."{pg_backend.table}_migrations"'
    )
    assert [row["version"] for row in rows] == [
        version for version, _ in load_migrations("postgres")
    ]


async def test_ten_concurrent_first_connects_migrate_once(pg: BackendSetup) -> None:
    assert pg.url is not None
    url = pg.url + "&queuekit_migrate=false&queuekit_pool_max=1"
    backends = [PostgresBackend.from_url(url) for _ in range(10)]
    await asyncio.gather(*(backend.open() for backend in backends))
    try:
        applied = await asyncio.gather(*(backend.migrate() for backend in backends))
    finally:
        await asyncio.gather(*(backend.close() for backend in backends))
    assert sorted(applied, key=len) == [[]] * 9 + [list(range(1, LATEST + 1))]


async def test_a_schema_at_version_2_upgrades_in_place(
    pg: BackendSetup, open_backend: OpenBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    version_2 = [
        (version, script) for version, script in load_migrations("postgres") if version <= 2
    ]
    monkeypatch.setattr(postgres_migrations, "load_migrations", lambda dialect: version_2)
    old_client = await open_backend()
    monkeypatch.undo()
    pool = old_client._pool
    assert pool is not None
    await pool.execute(
        f"INSERT INTO {old_client.qualified_table}"
        " (id, queue, type, payload, priority, status, max_attempts, created_at, scheduled_at)"
        " VALUES ('old', 'default', 't', '[1]', 10, 'pending', 3, now(), now())"
    )
    upgraded = await open_backend()
    old = await upgraded.get_job("old")
    assert old is not None and (old.payload, old.headers) == ([1], {})
    new = await upgraded.enqueue(queuekit.new_job("t", headers={"k": "v"}))
    claimed = await upgraded.claim({"default": 2}, limit=2, lease=30, worker_id="w")
    assert [(job.id, job.headers) for job in claimed] == [("old", {}), (new.id, {"k": "v"})]
    rows = await pool.fetch(
        f'SELECT version FROM "{upgraded.schema}"."{upgraded.table}_migrations" ORDER BY version'
    )
    assert [row["version"] for row in rows] == list(range(1, LATEST + 1))


async def test_a_schema_at_version_3_gets_lease_tokens_in_place(
    pg: BackendSetup, open_backend: OpenBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    version_3 = [
        (version, script) for version, script in load_migrations("postgres") if version <= 3
    ]
    monkeypatch.setattr(postgres_migrations, "load_migrations", lambda dialect: version_3)
    old_client = await open_backend()
    monkeypatch.undo()
    pool = old_client._pool
    assert pool is not None
    # A job an old worker runs, as version 3 claimed it: a lease and a worker, no token.
    await pool.execute(
        f"INSERT INTO {old_client.qualified_table}"
        " (id, queue, type, payload, priority, status, attempts, max_attempts, created_at,"
        "  scheduled_at, started_at, lease_expires_at, worker_id)"
        " VALUES ('old', 'default', 't', 'null', 10, 'running', 1, 3, now(), now(), now(),"
        "  now() + interval '1 hour', 'old-worker')"
    )
    upgraded = await open_backend()
    old = await upgraded.get_job("old")
    assert old is not None and old.lease_token is None
    assert not await upgraded.complete(old.attempt)  # no claim of this version holds it
    await upgraded.enqueue(queuekit.new_job("t", id="new"))
    (new,) = await upgraded.claim({"default": 1}, limit=1, lease=30, worker_id="w")
    assert new.id == "new" and new.lease_token
    assert await upgraded.complete(new.attempt)
    done = await upgraded.get_job("new")
    assert done is not None and (done.status, done.worker_id) == (JobStatus.COMPLETED, "w")


async def test_a_second_table_in_the_same_schema(pg: BackendSetup) -> None:
    assert pg.url is not None
    async with (
        queuekit.connect(pg.url) as first,
        queuekit.connect(pg.url + "&queuekit_table=other_jobs") as second,
    ):
        await first.enqueue("t")
        assert (await second.list_jobs()).jobs == []
        assert (await first.stats()).pending == 1


async def test_the_database_enforces_unique_keys_and_ranges(pg_backend: PostgresBackend) -> None:
    await pg_backend.enqueue(queuekit.new_job("t", unique_key="k"))
    pool = pg_backend._pool
    assert pool is not None
    insert = (
        f"INSERT INTO {pg_backend.qualified_table}"
        " (id, queue, type, payload, priority, status, max_attempts, created_at, scheduled_at,"
        "  unique_key) VALUES ($1, 'default', 't', 'null', $2, 'pending', 3, now(), now(), $3)"
    )
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(insert, "direct", 10, "k")  # a second live holder of "k"
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(insert, "too-high", 1001, None)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            f"UPDATE {pg_backend.qualified_table} SET status = 'completed'"
        )  # completed without finished_at
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            f"UPDATE {pg_backend.qualified_table} SET status = 'running'"
        )  # running without a lease


async def test_json_round_trips_exactly(pg_backend: PostgresBackend) -> None:
    """`json`, not `jsonb`: floats stay floats, NUL characters are kept, key order is kept."""
    payload: Any = {"z": 1e16, "a": [1e-7, 1.0, 2**70], "nul": "a\x00b"}
    job = await pg_backend.enqueue(queuekit.new_job("t", payload))
    stored = await pg_backend.get_job(job.id)
    assert stored is not None and stored.payload == payload
    assert isinstance(stored.payload["z"], float) and list(stored.payload) == ["z", "a", "nul"]
    running = (await pg_backend.claim({"default": 1}, limit=1, lease=30, worker_id="w"))[0]
    assert await pg_backend.complete(running.attempt, '{"r": 1e16}')
    done = await pg_backend.get_job(job.id)
    assert done is not None and done.result == {"r": 1e16} and isinstance(done.result["r"], float)


UNSAFE_NAMES = [
    'jobs"; DROP TABLE x; --',
    "with space",
    "1starts_with_digit",
    "",
    "é",
    "a-b",
    "x" * 64,
]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_schema_and_table_names_are_refused(dsn: str, name: str) -> None:
    with pytest.raises(InvalidNameError):
        PostgresBackend(dsn, schema=name)
    with pytest.raises(InvalidNameError):
        PostgresBackend(dsn, table=name)
    with pytest.raises(InvalidNameError):
        PostgresBackend.from_url(with_url_options(dsn, queuekit_schema=name))
    with pytest.raises(InvalidNameError):
        queuekit.connect(with_url_options(dsn, queuekit_table=name))


def test_a_table_name_must_leave_room_for_its_index_names(dsn: str) -> None:
    PostgresBackend(dsn, table="t" * 50)
    with pytest.raises(InvalidNameError):
        PostgresBackend(dsn, table="t" * 51)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://localhost/db?queuekit_unknown=1",
        "postgresql://localhost/db?queuekit_poll_only=maybe",
        "postgresql://localhost/db?queuekit_pool_max=-1",
        "postgresql://localhost/db?queuekit_pool_min=5&queuekit_pool_max=2",
        "postgresql://localhost/db?queuekit_batch_window=soon",
        "postgresql://localhost/db?queuekit_notify_cooldown=nan",
        "postgresql://localhost/db#fragment",
        "mysql://localhost/db",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidURLError):
        PostgresBackend.from_url(url)


async def test_a_bad_port_is_a_bad_url() -> None:
    backend = PostgresBackend.from_url("postgresql://localhost:notaport/db")
    with pytest.raises(InvalidURLError):
        await backend.open()


def test_connect_picks_postgres_for_both_schemes(dsn: str) -> None:
    for scheme in ("postgresql", "postgres"):
        url = scheme + "://" + dsn.split("://", 1)[1]
        queue = queuekit.connect(with_url_options(url, queuekit_schema="s", queuekit_table="t"))
        backend = queue.backend
        assert isinstance(backend, PostgresBackend)
        assert backend.qualified_table == '"s"."t"'

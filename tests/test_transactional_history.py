"""The history of an attempt completed inside the caller's own transaction, on the two SQL
backends: written when the transaction commits, never when it rolls back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import pytest

from queuekit import Queue
from queuekit.backend import FencedBackend
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.job import AttemptOutcome

from .conformance.helpers import claim_one
from .conformance.test_history import ended, history
from .setups import SETUPS, require_postgres_dsn


@pytest.fixture(params=["sqlite", "postgres"])
async def fenced(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FencedBackend]:
    """A backend that completes jobs inside the caller's transaction: the two SQL ones."""
    async with SETUPS[request.param](tmp_path) as setup:
        backend = setup.make()
        assert isinstance(backend, FencedBackend)
        await backend.open()
        try:
            yield backend
        finally:
            await backend.close()


@asynccontextmanager
async def driver_connection(backend: FencedBackend) -> AsyncIterator[object]:
    """The caller's own driver connection to the backend's database."""
    if isinstance(backend, SQLiteBackend):
        async with aiosqlite.connect(backend.path) as db:
            yield db
        return
    import asyncpg  # installed with the postgres extra, as the backend `fenced` opened needs

    conn = await asyncpg.connect(require_postgres_dsn())
    try:
        yield conn
    finally:
        await conn.close()


async def test_a_transactional_completion_is_recorded_when_it_commits(
    fenced: FencedBackend,
) -> None:
    queue = Queue(fenced)
    job = await queue.enqueue("t")
    claimed = await claim_one(fenced)
    async with driver_connection(fenced) as conn:

        async def complete_then_roll_back() -> None:
            async with fenced.transaction(conn):
                assert await fenced.complete_in_transaction(conn, claimed.attempt, '"no"')
                raise LookupError("rolled back")

        with pytest.raises(LookupError):
            await complete_then_roll_back()
        assert await history(queue, job.id) == ()
        async with fenced.transaction(conn):
            assert await fenced.complete_in_transaction(conn, claimed.attempt, '"yes"')
        async with fenced.transaction(conn):
            assert not await fenced.complete_in_transaction(conn, claimed.attempt, '"again"')
    done = await queue.get_job(job.id)
    assert done.result == "yes" and done.history is not None
    (record,) = done.history
    ended(claimed, AttemptOutcome.COMPLETED, record)
    assert record.finished_at == done.finished_at
